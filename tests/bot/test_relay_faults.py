"""The relay when things go wrong: a message that cannot be rendered fails alone while the rest
of its batch goes out, and Redis not answering costs no delivery attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.core.clock import clock
from backend.core.models import OutboxMessage
from backend.core.redis import close_kv, init_kv
from bot.relay import Relay
from tests.bot.test_relay import TEMPLATE, WELCOME, add_official_account, enqueue_one, reload
from tests.factories import make_user
from tests.fakes.blackhole import BlackHole

pytestmark = pytest.mark.usefixtures("db")

# A time the template's filter cannot convert to Beijing time (it overflows the calendar):
# not a RenderError the renderer foresaw, but an exception from deep inside it.
POISON = {
    "activity_title": "舞韵瑜伽",
    "starts_at": "9999-12-31T23:00:00-12:00",
    "status": "confirmed",
    "activity_id": 1,
}


async def test_a_message_that_crashes_the_renderer_fails_alone_and_the_batch_goes_out(
    settings, fake_wechat
):
    good = []
    for n in range(5):
        user = await make_user()
        await add_official_account(user, settings)
        good.append(await enqueue_one(user, dedupe_key=f"good-{n}"))
    victim = await make_user()
    await add_official_account(victim, settings)
    poison = await enqueue_one(victim, template_key="booking", context=POISON, dedupe_key="poison")

    relay = Relay(settings)
    try:
        claimed = await relay.run_once()
    finally:
        await relay.aclose()

    assert claimed == 6
    assert [(await reload(m)).status for m in good] == ["sent"] * 5
    failed = await reload(poison)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.last_error == "render: booking: OverflowError"
    assert failed.lease_owner is None
    # No personal data or context in the reason, and the poison row was never sent.
    assert len(fake_wechat.calls_to(TEMPLATE)) == 5


@pytest.fixture
def black_hole():
    with BlackHole(lifetime=120) as hole:
        yield hole


async def test_redis_not_answering_defers_without_spending_an_attempt(
    settings, fake_wechat, black_hole
):
    user = await make_user()
    await add_official_account(user, settings)
    message = await enqueue_one(user, dedupe_key="r")

    # The token cache lives in Redis, which now accepts connections and never answers.
    await close_kv()
    init_kv(settings.model_copy(update={"redis_url": black_hole.url}))
    relay = Relay(settings)
    try:
        await relay.run_once()
        deferred = await reload(message)
        assert deferred.status == "pending" and deferred.attempts == 0
        assert deferred.last_error == "store: Redis unavailable"
        assert deferred.available_at > clock.now()
        assert fake_wechat.calls_to(TEMPLATE) == []

        # Redis is back: the message goes out, as its first attempt.
        await close_kv()
        init_kv(settings)
        clock.set(deferred.available_at + timedelta(seconds=1))
        await relay.run_once()
    finally:
        await relay.aclose()
    sent = await reload(message)
    assert sent.status == "sent" and sent.attempts == 1
    assert len(fake_wechat.calls_to(TEMPLATE)) == 1
    assert not await OutboxMessage.filter(status="failed").exists()


async def test_a_known_token_keeps_messages_going_while_redis_is_down(
    settings, fake_wechat, black_hole
):
    user = await make_user()
    await add_official_account(user, settings)
    first = await enqueue_one(user, dedupe_key="1")
    relay = Relay(settings)
    try:
        await relay.run_once()
        assert (await reload(first)).status == "sent"
        await close_kv()
        init_kv(settings.model_copy(update={"redis_url": black_hole.url}))
        # Past the token's local reuse window: the store would be asked, and does not answer.
        for app_id, (token, _) in list(relay.channels.tokens._local.items()):
            relay.channels.tokens._local[app_id] = (token, 0.0)
        second = await enqueue_one(user, context={**WELCOME, "title": "第二条"}, dedupe_key="2")
        await relay.run_once()
    finally:
        await relay.aclose()
    assert (await reload(second)).status == "sent"
    assert len(fake_wechat.calls_to(TEMPLATE)) == 2
