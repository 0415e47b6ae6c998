"""The outbox relay against the fake WeChat server, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.accounts.models import User, WechatIdentity
from backend.core.clock import clock
from backend.core.config import Settings
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue
from backend.notices import consents
from backend.notices.models import DeliveryRefusal, SubscriptionHold
from bot.relay import Relay, quota_resume_at, retry_delay
from tests.conftest import free_port
from tests.factories import make_user

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
TEMPLATE = "/cgi-bin/message/template/send"
ROBOT = "/cgi-bin/webhook/send"
TOKEN = "/cgi-bin/stable_token"
SHANGHAI = ZoneInfo("Asia/Shanghai")
WELCOME = {"title": "欢迎加入邻里", "body": "欢迎来到邻里！", "url": "/h5/"}

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
async def relay(settings: Settings):
    relay = Relay(settings)
    yield relay
    await relay.aclose()


async def add_official_account(user: User, settings: Settings) -> str:
    openid = f"oa-openid-{user.id}"
    await WechatIdentity.create(
        user=user, kind="official_account", app_id=settings.oa_appid, openid=openid
    )
    return openid


async def mini_program_openid(user: User) -> str:
    identity = await WechatIdentity.get(user_id=user.id, kind="miniprogram")
    return identity.openid


async def enqueue_one(user: User | None = None, **overrides) -> OutboxMessage:
    fields = {
        "template_key": "notice",
        "context": WELCOME,
        "dedupe_key": f"test:{user.id if user else 'x'}:{overrides.get('dedupe_key', 'a')}",
        "user_id": user.id if user else None,
        **overrides,
    }
    await enqueue(**fields)
    return await OutboxMessage.get(dedupe_key=fields["dedupe_key"])


async def reload(message: OutboxMessage) -> OutboxMessage:
    return await OutboxMessage.get(id=message.id)


# --- choosing the channel ---


async def test_subscribe_message_spends_exactly_one_consent(relay, fake_wechat, settings):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=2)
    message = await enqueue_one(user)

    assert await relay.run_once() == 1

    row = await reload(message)
    assert row.status == "sent"
    assert row.sent_at is not None and row.attempts == 1
    assert row.lease_owner is None and row.leased_until is None
    calls = fake_wechat.calls_to(SUBSCRIBE)
    assert len(calls) == 1
    body = calls[0].body
    assert body["touser"] == await mini_program_openid(user)
    assert body["template_id"] == settings.subscribe_templates["notice"]
    assert body["data"]["thing1"] == {"value": "欢迎加入邻里"}
    assert body["page"] == "pages/index/index"
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 1
    assert fake_wechat.calls_to(TEMPLATE) == []

    assert await relay.run_once() == 0
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1


async def test_template_message_when_no_consent_is_left(relay, fake_wechat, settings):
    user = await make_user()
    oa_openid = await add_official_account(user, settings)
    message = await enqueue_one(user)

    await relay.run_once()

    row = await reload(message)
    assert row.status == "sent"
    assert fake_wechat.calls_to(SUBSCRIBE) == []
    [call] = fake_wechat.calls_to(TEMPLATE)
    assert call.body["touser"] == oa_openid
    assert call.body["template_id"] == settings.oa_templates["notice"]
    assert call.body["url"] == settings.public_base_url + "/h5/"
    assert call.body["data"]["thing1"]["value"] == "欢迎加入邻里"


async def test_skipped_when_the_user_has_no_channel(relay, fake_wechat):
    user = await make_user()  # a mini-program identity, but no consent and no official account
    message = await enqueue_one(user)

    await relay.run_once()

    row = await reload(message)
    assert row.status == "skipped"
    assert row.attempts == 0
    assert "no consent" in row.last_error and "no official-account identity" in row.last_error
    assert fake_wechat.state.calls == []


async def test_forced_channels(relay, fake_wechat, settings):
    user = await make_user()
    await add_official_account(user, settings)
    await consents.record_consent(user_id=user.id, template_key="booking", accepted=1)
    context = {
        "activity_id": 7,
        "activity_title": "午间一小时·舞韵瑜伽",
        "starts_at": "2025-03-04T04:00:00+00:00",
        "status": "promoted",
    }
    by_template = await enqueue_one(
        user, template_key="booking", context=context, channel="template", dedupe_key="t"
    )
    await relay.run_once()

    assert (await reload(by_template)).status == "sent"
    [call] = fake_wechat.calls_to(TEMPLATE)
    assert call.body["data"]["time2"]["value"] == "2025年3月4日 12:00"
    assert call.body["data"]["phrase3"]["value"] == "候补转正"
    # The template channel leaves the subscribe consent alone.
    assert await consents.consents_left(user_id=user.id, template_key="booking") == 1

    by_subscribe = await enqueue_one(
        user, template_key="booking", context=context, channel="subscribe", dedupe_key="s1"
    )
    without_consent = await enqueue_one(
        user, template_key="booking", context=context, channel="subscribe", dedupe_key="s2"
    )
    await relay.run_once()
    assert (await reload(by_subscribe)).status == "sent"
    skipped = await reload(without_consent)
    assert skipped.status == "skipped" and "no consent" in skipped.last_error
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1
    assert len(fake_wechat.calls_to(TEMPLATE)) == 1


async def test_wecom_group_robot(relay, fake_wechat):
    message = await enqueue_one(
        None,
        channel="wecom",
        recipient="robot-key-1",
        context={"title": "停水通知", "body": "明天 9:00–12:00 停水。"},
    )

    await relay.run_once()

    assert (await reload(message)).status == "sent"
    [call] = fake_wechat.calls_to(ROBOT)
    assert call.query["key"] == "robot-key-1"
    assert call.body["msgtype"] == "markdown"
    assert "停水通知" in call.body["markdown"]["content"]
    assert "明天 9:00–12:00 停水。" in call.body["markdown"]["content"]
    assert fake_wechat.calls_to(TOKEN) == []  # the robot key is the credential


async def test_unknown_template_and_missing_context_fail_without_sending(relay, fake_wechat):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="booking", accepted=1)
    unknown = await enqueue_one(user, template_key="nonexistent", dedupe_key="u")
    incomplete = await enqueue_one(user, template_key="booking", context={}, dedupe_key="i")

    await relay.run_once()

    assert (await reload(unknown)).status == "failed"
    failed = await reload(incomplete)
    assert failed.status == "failed" and failed.last_error.startswith("render:")
    assert fake_wechat.state.calls == []
    assert await consents.consents_left(user_id=user.id, template_key="booking") == 1


async def test_dedupe_key_makes_a_second_enqueue_a_no_op(relay, fake_wechat, settings):
    user = await make_user()
    await add_official_account(user, settings)
    for _ in range(3):
        await enqueue(
            template_key="notice", context=WELCOME, dedupe_key="welcome:dup", user_id=user.id
        )

    assert await OutboxMessage.filter(dedupe_key="welcome:dup").count() == 1
    await relay.run_once()
    await relay.run_once()
    assert len(fake_wechat.calls_to(TEMPLATE)) == 1


# --- WeChat's answers ---


async def test_invalid_token_is_refreshed_once_and_the_send_retried(relay, fake_wechat):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=2)
    first = await enqueue_one(user, dedupe_key="1")
    await relay.run_once()
    assert (await reload(first)).status == "sent"
    assert len(fake_wechat.calls_to(TOKEN)) == 1

    fake_wechat.invalidate_tokens()
    second = await enqueue_one(user, dedupe_key="2")
    await relay.run_once()

    assert (await reload(second)).status == "sent"
    assert len(fake_wechat.calls_to(TOKEN)) == 2
    sends = fake_wechat.calls_to(SUBSCRIBE)
    assert len(sends) == 3  # first, second with the dead token, second again
    assert sends[1].query["access_token"] != sends[2].query["access_token"]
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 0


async def test_a_token_rejected_twice_is_retried_later_not_refreshed_again(relay, fake_wechat):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    fake_wechat.fail_next(SUBSCRIBE, 42001, times=2)

    await relay.run_once()

    row = await reload(message)
    assert row.status == "retry" and "42001" in row.last_error
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 2
    # The first fetch and one refresh: WeChat still handed out the token it had refused, so
    # the refresh forced a new one (and only once).
    assert [c.body["force_refresh"] for c in fake_wechat.calls_to(TOKEN)] == [False, False, True]
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 1


async def test_user_refusal_is_final_and_remembered(relay, fake_wechat, settings):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=3)
    refused = await enqueue_one(user, dedupe_key="1")
    fake_wechat.fail_next(SUBSCRIBE, 43101)

    await relay.run_once()

    row = await reload(refused)
    assert row.status == "refused" and "43101" in row.last_error
    assert await DeliveryRefusal.exists(user_id=user.id, channel="subscribe", template_key="notice")
    # WeChat holds no acceptance for us, whatever our count said.
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 0

    # Never retried, and the next message does not try that channel again.
    clock.advance(timedelta(days=2))
    later = await enqueue_one(user, dedupe_key="2")
    await relay.run_once()
    assert (await reload(refused)).status == "refused"
    skipped = await reload(later)
    assert skipped.status == "skipped" and "refused earlier" in skipped.last_error
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1

    # Another template is still allowed, and the official account is the next channel.
    oa_openid = await add_official_account(user, settings)
    third = await enqueue_one(user, dedupe_key="3")
    await relay.run_once()
    assert (await reload(third)).status == "sent"
    assert fake_wechat.calls_to(TEMPLATE)[-1].body["touser"] == oa_openid


async def test_refusal_falls_through_to_the_official_account(relay, fake_wechat, settings):
    user = await make_user()
    await add_official_account(user, settings)
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    fake_wechat.fail_next(SUBSCRIBE, 43101)

    await relay.run_once()

    row = await reload(message)
    assert row.status == "sent"
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1
    assert len(fake_wechat.calls_to(TEMPLATE)) == 1


async def test_template_refusal_is_remembered_per_channel(relay, fake_wechat, settings):
    user = await make_user()
    await add_official_account(user, settings)
    message = await enqueue_one(user, dedupe_key="1")
    fake_wechat.fail_next(TEMPLATE, 43101)

    await relay.run_once()

    assert (await reload(message)).status == "refused"
    assert await DeliveryRefusal.exists(user_id=user.id, channel="template", template_key="notice")
    later = await enqueue_one(user, dedupe_key="2")
    await relay.run_once()
    assert (await reload(later)).status == "skipped"
    assert len(fake_wechat.calls_to(TEMPLATE)) == 1


async def test_daily_quota_defers_to_tomorrow_without_burning_an_attempt(
    relay, fake_wechat, settings
):
    clock.set(datetime(2025, 3, 10, 15, 0, tzinfo=SHANGHAI))
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    fake_wechat.fail_next(SUBSCRIBE, 45009)

    await relay.run_once()

    row = await reload(message)
    assert row.status == "pending"
    assert row.attempts == 0
    assert row.available_at == datetime(2025, 3, 11, 0, 5, tzinfo=SHANGHAI)
    assert row.lease_owner is None
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 1

    clock.set(datetime(2025, 3, 11, 0, 4, tzinfo=SHANGHAI))
    assert await relay.run_once() == 0
    clock.set(datetime(2025, 3, 11, 0, 5, tzinfo=SHANGHAI))
    assert await relay.run_once() == 1
    assert (await reload(message)).status == "sent"
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 0


def test_quota_resumes_at_five_past_midnight_beijing_time():
    late_utc = datetime(2025, 3, 10, 17, 30, tzinfo=UTC)  # 01:30 on the 11th in Shanghai
    assert quota_resume_at(late_utc, "Asia/Shanghai") == datetime(
        2025, 3, 12, 0, 5, tzinfo=SHANGHAI
    )


async def test_network_error_is_retried_with_backoff(fake_wechat, settings):
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    unreachable = settings.model_copy(update={"wechat_api_base": f"http://127.0.0.1:{free_port()}"})
    offline = Relay(unreachable)
    try:
        await offline.run_once()
    finally:
        await offline.aclose()

    row = await reload(message)
    assert row.status == "retry" and row.attempts == 1
    assert "ConnectError" in row.last_error
    delay = row.available_at - clock.now()
    assert timedelta(seconds=30) <= delay <= timedelta(seconds=37.5)
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 1

    online = Relay(settings)
    try:
        assert await online.run_once() == 0  # not due yet
        clock.advance(delay)
        assert await online.run_once() == 1
    finally:
        await online.aclose()
    row = await reload(message)
    assert row.status == "sent" and row.attempts == 2
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1


async def test_system_busy_is_retried_and_gives_up_after_max_attempts(fake_wechat, settings):
    user = await make_user()
    await add_official_account(user, settings)
    message = await enqueue_one(user)
    fake_wechat.fail_next(TEMPLATE, -1, times=3)
    relay = Relay(settings.model_copy(update={"outbox_max_attempts": 3}))
    try:
        for attempt in (1, 2):
            await relay.run_once()
            row = await reload(message)
            assert row.status == "retry" and row.attempts == attempt
            clock.advance(timedelta(hours=2))
        await relay.run_once()
    finally:
        await relay.aclose()

    row = await reload(message)
    assert row.status == "failed" and row.attempts == 3
    assert "-1" in row.last_error
    assert len(fake_wechat.calls_to(TEMPLATE)) == 3


def test_backoff_doubles_with_jitter_and_is_capped():
    for attempts, base in ((1, 30), (2, 60), (3, 120), (10, 3600), (30, 3600)):
        delay = retry_delay(attempts).total_seconds()
        assert base <= delay <= base * 1.25


async def test_other_errcodes_fail_and_keep_the_errcode(relay, fake_wechat):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    fake_wechat.fail_next(SUBSCRIBE, 40003, errmsg="invalid openid")

    await relay.run_once()

    row = await reload(message)
    assert row.status == "failed" and row.attempts == 1
    assert "40003" in row.last_error
    # WeChat did not deliver, so the consent is still there for the next message.
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 1


async def test_wecom_rate_limit_is_transient_and_bad_key_final(relay, fake_wechat):
    limited = await enqueue_one(None, channel="wecom", recipient="k1", dedupe_key="1")
    fake_wechat.fail_next(ROBOT, 45009)
    await relay.run_once()
    assert (await reload(limited)).status == "retry"

    bad_key = await enqueue_one(None, channel="wecom", recipient="k2", dedupe_key="2")
    fake_wechat.fail_next(ROBOT, 93000, errmsg="invalid webhook url")
    await relay.run_once()
    row = await reload(bad_key)
    assert row.status == "failed" and "93000" in row.last_error


# --- leases ---


async def test_concurrent_relays_claim_disjoint_rows(settings):
    for n in range(30):
        await enqueue_one(None, channel="wecom", recipient=f"k{n}", dedupe_key=str(n))
    relays = [Relay(settings) for _ in range(3)]
    try:
        claims = await asyncio.gather(*(r.claim(12) for r in relays))
    finally:
        for r in relays:
            await r.aclose()

    ids = [row.id for rows in claims for row in rows]
    assert len(ids) == len(set(ids)) == 30
    owners = {row.lease_owner for rows in claims for row in rows}
    assert len(owners) == 3


async def test_a_live_lease_is_respected_and_an_expired_one_taken_over(settings, fake_wechat):
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    message = await enqueue_one(None, channel="wecom", recipient="k")
    crashed, other = Relay(settings), Relay(settings)
    try:
        [claimed] = await crashed.claim(10)  # ... and never sends: the process died
        assert claimed.id == message.id
        assert await other.claim(10) == []

        clock.advance(timedelta(seconds=settings.outbox_lease_seconds + 1))
        assert await other.run_once() == 1
    finally:
        await crashed.aclose()
        await other.aclose()
    assert (await reload(message)).status == "sent"
    assert len(fake_wechat.calls_to(ROBOT)) == 1


async def test_a_row_whose_lease_ran_out_is_not_sent(settings, fake_wechat):
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    message = await enqueue_one(None, channel="wecom", recipient="k")
    relay = Relay(settings)
    try:
        [row] = await relay.claim(10)
        clock.advance(timedelta(seconds=settings.outbox_lease_seconds - 5))
        outcome = await relay.deliver(row)
    finally:
        await relay.aclose()

    assert outcome.status == "release"
    row = await reload(message)
    assert row.status == "pending" and row.lease_owner is None and row.attempts == 0
    assert fake_wechat.calls_to(ROBOT) == []


async def test_final_rows_are_never_claimed(relay, fake_wechat):
    for n, status in enumerate(("sent", "skipped", "refused", "failed")):
        message = await enqueue_one(None, channel="wecom", recipient="k", dedupe_key=str(n))
        await OutboxMessage.filter(id=message.id).update(status=status)

    assert await relay.run_once() == 0
    assert fake_wechat.state.calls == []


# --- pacing and crashes ---


async def test_a_group_robot_gets_one_message_per_its_turn(relay, fake_wechat, settings):
    busy = [
        await enqueue_one(None, channel="wecom", recipient="busy", dedupe_key=f"b{n}")
        for n in range(4)
    ]
    other = await enqueue_one(None, channel="wecom", recipient="other", dedupe_key="o")
    now = clock.now()

    assert await relay.run_once() == 5

    assert Counter(c.query["key"] for c in fake_wechat.calls_to(ROBOT)) == Counter(
        {"busy": 1, "other": 1}
    )
    assert (await reload(other)).status == "sent"
    rows = [await reload(m) for m in busy]
    waiting = [r for r in rows if r.status == "pending"]
    assert len(waiting) == 3
    spacing = timedelta(seconds=60 / settings.wecom_robot_per_minute)
    for row in waiting:
        # Not an attempt: just later, by the robot's spacing (20 a minute = every 3 s).
        assert row.attempts == 0 and row.available_at >= now + spacing - timedelta(seconds=1)
    assert await relay.run_once() == 0


async def test_a_consent_taken_before_a_crash_is_used_by_the_retry(settings, fake_wechat):
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    message = await enqueue_one(user)
    crashed, other = Relay(settings), Relay(settings)
    try:
        [row] = await crashed.claim(10)
        # The crashed relay had taken the consent for this row and died before sending.
        assert await consents.spend_consent(user_id=user.id, template_key="notice", hold_for=row.id)
        clock.advance(timedelta(seconds=settings.outbox_lease_seconds + 1))
        assert await other.run_once() == 1
    finally:
        await crashed.aclose()
        await other.aclose()

    assert (await reload(message)).status == "sent"
    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 1
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 0
    assert await SubscriptionHold.filter(outbox_id=message.id).count() == 1


async def test_a_held_consent_is_given_back_once(settings):
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="wish", accepted=1)
    assert await consents.spend_consent(user_id=user.id, template_key="wish", hold_for=7)
    assert await consents.spend_consent(user_id=user.id, template_key="wish", hold_for=7)
    assert not await consents.spend_consent(user_id=user.id, template_key="wish", hold_for=8)
    for _ in range(2):
        await consents.return_consent(user_id=user.id, template_key="wish", hold_for=7)
    assert await consents.consents_left(user_id=user.id, template_key="wish") == 1
