"""Notices end to end: real `linli bot` processes fan a notice out and deliver it to the fake
WeChat server — each person once on their best channel, the group robot once, WeChat's
error codes handled, two bots side by side, and a bot killed with SIGKILL mid fan-out."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User, WechatIdentity
from backend.core.config import Settings
from backend.core.models import OutboxMessage
from backend.notices import service as notices_service
from backend.notices.models import DeliveryRefusal, Notice, SubscriptionConsent
from backend.orgs.models import Community, Street
from tests.bot.test_bot_process import (
    BOT_ENV,
    ROBOT,
    SUBSCRIBE,
    TOKEN,
    fresh_database,
    in_database,
    stop,
    wait_until,
)
from tests.conftest import linli_env
from tests.factories.notices import publish_notice
from tests.fakes.wechat_server import FakeWechat

TEMPLATE = "/cgi-bin/message/template/send"
FINAL = ("sent", "skipped", "refused", "failed")
ROBOT_KEY = "robot-e2e"

pytestmark = pytest.mark.slow


def bot_env(**extra: str) -> dict[str, str]:
    base = {
        **BOT_ENV,
        "LINLI_LOG_LEVEL": "WARNING",
        "LINLI_NOTICE_FANOUT_BATCH_SIZE": "50",
        "LINLI_OUTBOX_BATCH_SIZE": "50",
    }
    return linli_env(**{**base, **extra})


async def make_town(settings: Settings, *, mini: int, official: int, in_app: int) -> int:
    """A community of mini-program users with one consent each, official-account users and
    people WeChat cannot reach; returns the street admin's id."""
    street = await Street.create(slug="e2e", name="石门二路街道")
    community = await Community.create(
        street=street, slug="e2e", name="新福康里居民区", wecom_robot_key=ROBOT_KEY
    )
    for n in range(mini + official + in_app):
        user = await User.create(nickname=f"居民{n}", community=community)
        if n < mini:
            await WechatIdentity.create(
                user=user, kind="miniprogram", app_id=settings.mp_appid, openid=f"mp-{n}"
            )
            await SubscriptionConsent.create(user=user, template_key="notice", remaining=1)
        elif n < mini + official:
            await WechatIdentity.create(
                user=user, kind="official_account", app_id=settings.oa_appid, openid=f"oa-{n}"
            )
    admin = await User.create(nickname="周主任")
    await accounts_service.grant_role(
        actor=None, user_id=admin.id, role="street_admin", community_id=None
    )
    return admin.id


def publish(settings: Settings, admin_id: int, title: str) -> int:
    async def work() -> int:
        admin = await User.get(id=admin_id)
        community = await Community.get(slug="e2e")
        notice = await publish_notice(
            actor=admin, community_id=community.id, title=title, body=f"{title}：请相互转告。"
        )
        return notice.id

    return in_database(settings, work)


def settled(settings: Settings, notice_id: int) -> bool:
    """Fanned out completely and every message of the notice final."""

    async def work() -> bool:
        notice = await Notice.get(id=notice_id)
        open_rows = await OutboxMessage.filter(
            dedupe_key__startswith=f"notice:{notice_id}:", status__not_in=FINAL
        ).count()
        return notice.fanout_done_at is not None and open_rows == 0

    return in_database(settings, work)


def statuses(settings: Settings, notice_id: int) -> Counter:
    async def work() -> Counter:
        rows = OutboxMessage.filter(dedupe_key__startswith=f"notice:{notice_id}:user:")
        return Counter(await rows.values_list("status", flat=True))

    return in_database(settings, work)


def recipients(fake: FakeWechat, path: str) -> Counter:
    return Counter(call.body["touser"] for call in fake.calls_to(path))


def test_a_notice_reaches_everyone_once_on_their_best_channel(
    settings: Settings, start_bot, fake_wechat: FakeWechat
):
    env = bot_env()
    fresh_database(settings, env)
    admin_id = in_database(
        settings, lambda: make_town(settings, mini=100, official=100, in_app=100)
    )
    first = publish(settings, admin_id, "停水通知")
    bot = start_bot(env)

    wait_until(lambda: settled(settings, first), timeout=60, processes=[bot])

    assert recipients(fake_wechat, SUBSCRIBE) == Counter({f"mp-{n}": 1 for n in range(100)})
    assert recipients(fake_wechat, TEMPLATE) == Counter({f"oa-{n}": 1 for n in range(100, 200)})
    assert [c.query["key"] for c in fake_wechat.calls_to(ROBOT)] == [ROBOT_KEY]
    assert statuses(settings, first) == Counter({"sent": 200, "skipped": 100})

    # The consents are used up: the second notice reaches the mini-program users no more.
    second = publish(settings, admin_id, "防汛通知")
    wait_until(lambda: settled(settings, second), timeout=60, processes=[bot])
    assert stop(bot) == 0

    assert len(fake_wechat.calls_to(SUBSCRIBE)) == 100
    assert recipients(fake_wechat, TEMPLATE) == Counter({f"oa-{n}": 2 for n in range(100, 200)})
    assert len(fake_wechat.calls_to(ROBOT)) == 2
    assert statuses(settings, second) == Counter({"sent": 100, "skipped": 200})

    async def consents() -> list[int]:
        return await SubscriptionConsent.all().values_list("remaining", flat=True)

    assert set(in_database(settings, consents)) == {0}


def test_wechat_error_codes_through_the_bot(settings: Settings, start_bot, fake_wechat: FakeWechat):
    env = bot_env()
    fresh_database(settings, env)
    admin_id = in_database(settings, lambda: make_town(settings, mini=6, official=0, in_app=0))
    # The first three subscribe sends to arrive: user refused, daily quota, expired token.
    fake_wechat.fail_next(SUBSCRIBE, 43101)
    fake_wechat.fail_next(SUBSCRIBE, 45009)
    fake_wechat.fail_next(SUBSCRIBE, 40001)
    notice_id = publish(settings, admin_id, "活动预告")
    bot = start_bot(env)

    def done() -> bool:
        return statuses(settings, notice_id) == Counter({"sent": 4, "refused": 1, "pending": 1})

    wait_until(done, timeout=60, processes=[bot])
    assert stop(bot) == 0

    calls = fake_wechat.calls_to(SUBSCRIBE)
    # Six messages, and the one that met 40001 once more with a fresh token.
    assert len(calls) == 7
    [again] = [o for o, n in Counter(c.body["touser"] for c in calls).items() if n == 2]
    first, second = [c.query["access_token"] for c in calls if c.body["touser"] == again]
    assert first != second
    # One fetch, one refresh: the refused token was still the one WeChat handed out, so the
    # refresh forced a new one.
    assert [c.body["force_refresh"] for c in fake_wechat.calls_to(TOKEN)] == [False, False, True]

    async def outcome():
        refused = await OutboxMessage.get(
            dedupe_key__startswith=f"notice:{notice_id}:user:", status="refused"
        )
        deferred = await OutboxMessage.get(
            dedupe_key__startswith=f"notice:{notice_id}:user:", status="pending"
        )
        remembered = await DeliveryRefusal.filter(
            user_id=refused.user_id, channel="subscribe", template_key="notice"
        ).count()
        left = {
            row.user_id: row.remaining
            for row in await SubscriptionConsent.filter(
                user_id__in=[refused.user_id, deferred.user_id]
            )
        }
        admin = await User.get(id=admin_id)
        counts = await notices_service.delivery_counts(actor=admin, notice_id=notice_id)
        return refused, deferred, remembered, left, counts

    refused, deferred, remembered, left, counts = in_database(settings, outcome)
    assert remembered == 1 and left[refused.user_id] == 0
    # 45009: tomorrow 00:05 Beijing time, not an attempt, and the consent kept for it.
    resume = deferred.available_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (resume.hour, resume.minute) == (0, 5)
    # Right after midnight the quota of the new day is the one used up: the day after.
    assert timedelta(0) < resume - datetime.now(UTC) <= timedelta(days=1, minutes=5)
    assert deferred.attempts == 0 and left[deferred.user_id] == 1
    assert (counts.sent, counts.pending, counts.failed) == (4, 1, 1)
    assert counts.failed_by_reason == {"43101": 1}


def test_two_bots_in_parallel_send_each_message_once(
    settings: Settings, start_bot, fake_wechat: FakeWechat
):
    env = bot_env(LINLI_NOTICE_FANOUT_BATCH_SIZE="20", LINLI_OUTBOX_BATCH_SIZE="10")
    fresh_database(settings, env)
    admin_id = in_database(settings, lambda: make_town(settings, mini=150, official=150, in_app=0))
    notice_id = publish(settings, admin_id, "消防检查通知")
    bots = [start_bot(env), start_bot(env)]

    wait_until(lambda: settled(settings, notice_id), timeout=90, processes=bots)
    assert [stop(bot) for bot in bots] == [0, 0]

    assert recipients(fake_wechat, SUBSCRIBE) == Counter({f"mp-{n}": 1 for n in range(150)})
    assert recipients(fake_wechat, TEMPLATE) == Counter({f"oa-{n}": 1 for n in range(150, 300)})
    assert len(fake_wechat.calls_to(ROBOT)) == 1
    if settings.redis_url:
        # One shared token per app for both processes.
        assert len(fake_wechat.calls_to(TOKEN)) == 2


def test_a_bot_killed_mid_fan_out_misses_nobody(
    settings: Settings, start_bot, fake_wechat: FakeWechat
):
    slow = bot_env(
        LINLI_NOTICE_FANOUT_BATCH_SIZE="20",
        LINLI_NOTICE_FANOUT_MAX_BATCHES="1",
        LINLI_OUTBOX_BATCH_SIZE="10",
        LINLI_OUTBOX_LEASE_SECONDS="4",
        LINLI_WECHAT_SENDS_PER_SECOND="25",
    )
    fresh_database(settings, slow)
    admin_id = in_database(settings, lambda: make_town(settings, mini=150, official=150, in_app=0))
    notice_id = publish(settings, admin_id, "停电通知")
    bot = start_bot(slow)

    def sends() -> int:
        return len(fake_wechat.calls_to(SUBSCRIBE)) + len(fake_wechat.calls_to(TEMPLATE))

    wait_until(lambda: sends() >= 40, timeout=60, processes=[bot])
    bot.send_signal(signal.SIGKILL)
    bot.wait(timeout=10)
    # Whatever the fake still answers for the dead bot has arrived by now.
    time.sleep(0.3)

    async def in_flight() -> tuple[Notice, set[int | None]]:
        notice = await Notice.get(id=notice_id)
        leased = OutboxMessage.filter(
            dedupe_key__startswith=f"notice:{notice_id}:",
            lease_owner__isnull=False,
            status__in=("pending", "retry"),
        )
        return notice, set(await leased.values_list("user_id", flat=True))

    notice, leased_users = in_database(settings, in_flight)
    assert notice.fanout_done_at is None, "the bot was meant to die mid fan-out"
    assert 0 < notice.fanout_count < 300

    restarted = start_bot(bot_env(LINLI_OUTBOX_LEASE_SECONDS="4"))
    wait_until(lambda: settled(settings, notice_id), timeout=90, processes=[restarted])
    assert stop(restarted) == 0

    async def openids() -> dict[str, int]:
        rows = await WechatIdentity.all().values_list("openid", "user_id")
        return dict(rows)

    user_of = in_database(settings, openids)
    got = recipients(fake_wechat, SUBSCRIBE) + recipients(fake_wechat, TEMPLATE)
    everyone = {f"mp-{n}" for n in range(150)} | {f"oa-{n}" for n in range(150, 300)}
    assert set(got) == everyone, "somebody was missed"
    repeated = {openid for openid, n in got.items() if n > 1}
    # Only a message in flight when the bot died may arrive twice.
    assert {user_of[openid] for openid in repeated} <= leased_users
    assert all(n <= 2 for n in got.values())
    assert 1 <= len(fake_wechat.calls_to(ROBOT)) <= 2
    assert statuses(settings, notice_id) == Counter({"sent": 300})
