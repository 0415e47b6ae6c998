"""`linli bot` as real processes: a welcome flows end to end, and two bots never send twice."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User, WechatIdentity
from backend.core.config import Settings
from backend.core.db import close_db, init_db
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue
from backend.notices.models import SubscriptionConsent
from tests.conftest import free_port, linli_env, reset_postgres, run_linli
from tests.fakes.wechat_server import FakeWechat

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
ROBOT = "/cgi-bin/webhook/send"
TOKEN = "/cgi-bin/stable_token"
BOT_ENV = {"LINLI_BOT_POLL_SECONDS": "0.1", "LINLI_LOG_LEVEL": "INFO"}

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as systemd or docker would: the bot finishes its batch and exits 0."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def wait_until(condition: Callable[[], bool], *, timeout: float, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            assert process.poll() is None, f"bot exited early with {process.returncode}"
        if time.monotonic() > deadline:
            raise TimeoutError("the bot did not deliver in time")
        time.sleep(0.1)


def fresh_database(settings: Settings, env: dict[str, str]) -> None:
    if not settings.is_sqlite:
        reset_postgres(settings.database_url)
    migrated = run_linli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr


def in_database(settings: Settings, work) -> object:
    """Run `work()` against the migrated database from this (test) process."""

    async def run() -> object:
        # Tortoise caches SQL per connection name, and tests alternate dialects.
        EXECUTOR_CACHE.clear()
        await init_db(settings)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(run())


def test_welcome_after_the_first_login_reaches_wechat(
    live_server_factory, start_bot, fake_wechat: FakeWechat, tmp_path: Path
):
    server = live_server_factory(workers=1)
    fake_wechat.register_code("e2e-code", "e2e-openid")
    login = httpx.post(
        server.base_url + "/api/v1/auth/miniprogram/login", json={"code": "e2e-code"}, timeout=10
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    consent = httpx.post(
        server.base_url + "/api/v1/me/subscriptions",
        json={"template_key": "notice", "accepted": 1},
        headers=headers,
        timeout=10,
    )
    assert consent.json() == {"template_key": "notice", "remaining": 1}

    bot = start_bot(linli_env(**BOT_ENV))
    wait_until(lambda: len(fake_wechat.calls_to(SUBSCRIBE)) >= 1, timeout=30, processes=[bot])
    assert stop(bot) == 0

    [call] = fake_wechat.calls_to(SUBSCRIBE)
    assert call.body["touser"] == "e2e-openid"
    assert call.body["data"]["thing1"] == {"value": "欢迎加入邻里"}
    log_lines = [json.loads(line) for line in (tmp_path / "bot-0.log").read_text().splitlines()]
    sent = [e for e in log_lines if e["msg"] == "outbox sent via subscribe"]
    assert len(sent) == 1 and isinstance(sent[0]["outbox_id"], int)
    # The one consent is spent: the mini-program has to ask again before the next message.
    again = httpx.post(
        server.base_url + "/api/v1/me/subscriptions",
        json={"template_key": "notice", "accepted": 1},
        headers=headers,
        timeout=10,
    )
    assert again.json()["remaining"] == 1


def test_two_bots_in_parallel_send_nothing_twice(
    settings: Settings, start_bot, fake_wechat: FakeWechat
):
    env = linli_env(**{**BOT_ENV, "LINLI_OUTBOX_BATCH_SIZE": "7"})
    fresh_database(settings, env)

    async def fill() -> None:
        for n in range(100):
            await enqueue(
                template_key="notice",
                context={"title": f"通知 {n}"},
                dedupe_key=f"robot:{n}",
                channel="wecom",
                recipient=f"robot-{n}",
            )
        for n in range(40):
            user = await User.create(nickname=f"居民{n}")
            await WechatIdentity.create(
                user=user, kind="miniprogram", app_id=settings.mp_appid, openid=f"mp-{n}"
            )
            await SubscriptionConsent.create(user=user, template_key="notice", remaining=1)
            await enqueue(
                template_key="notice",
                context={"title": f"欢迎 {n}"},
                dedupe_key=f"welcome:{n}",
                user_id=user.id,
            )

    in_database(settings, fill)
    bots = [start_bot(env), start_bot(env)]
    wait_until(
        lambda: (
            len(fake_wechat.calls_to(ROBOT)) >= 100 and len(fake_wechat.calls_to(SUBSCRIBE)) >= 40
        ),
        timeout=60,
        processes=bots,
    )
    assert [stop(bot) for bot in bots] == [0, 0]

    robot_keys = Counter(call.query["key"] for call in fake_wechat.calls_to(ROBOT))
    assert robot_keys == Counter({f"robot-{n}": 1 for n in range(100)})
    openids = Counter(call.body["touser"] for call in fake_wechat.calls_to(SUBSCRIBE))
    assert openids == Counter({f"mp-{n}": 1 for n in range(40)})
    if settings.redis_url:
        # Both processes used one shared token.
        assert len(fake_wechat.calls_to(TOKEN)) == 1

    async def outcome() -> tuple[dict[str, int], int]:
        statuses = Counter(await OutboxMessage.all().values_list("status", flat=True))
        left = sum(await SubscriptionConsent.all().values_list("remaining", flat=True))
        return dict(statuses), left

    assert in_database(settings, outcome) == ({"sent": 140}, 0)


def test_a_bot_stopped_while_still_starting_exits_cleanly(settings: Settings, start_bot):
    # On a busy host the imports and the first connection take seconds; a stop asked for
    # then is as ordinary as one asked for later (systemd restarts, docker stop).
    env = linli_env(**BOT_ENV)
    fresh_database(settings, env)
    bot = start_bot(env)
    time.sleep(0.3)
    assert stop(bot) == 0


def bot_metric(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples with `labels` in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if not (sample == name or sample.startswith(name + "{")):
            continue
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            total += float(value)
    return total


def test_the_bot_serves_its_own_metrics(settings: Settings, start_bot, fake_wechat: FakeWechat):
    address = f"127.0.0.1:{free_port()}"
    env = linli_env(**{**BOT_ENV, "LINLI_BOT_METRICS_ADDRESS": address})
    fresh_database(settings, env)

    async def fill() -> None:
        for n in range(12):
            await enqueue(
                template_key="notice",
                context={"title": f"通知 {n}"},
                dedupe_key=f"robot:{n}",
                channel="wecom",
                recipient=f"robot-{n}",
            )

    in_database(settings, fill)
    fake_wechat.fail_next(ROBOT, 45009, times=2)  # the robot's quota: two deferred
    bot = start_bot(env)

    def scraped() -> str:
        try:
            return httpx.get(f"http://{address}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    wait_until(
        lambda: bot_metric(scraped(), "linli_outbox_messages_total", result="sent") >= 10,
        timeout=30,
        processes=[bot],
    )
    page = scraped()
    assert stop(bot) == 0

    assert bot_metric(page, "linli_outbox_messages_total", channel="wecom", result="sent") == 10
    assert bot_metric(page, "linli_outbox_messages_total", result="failed") == 0
    assert bot_metric(page, "linli_outbox_messages_total") == 12
    # The backlog gauges are there for an alert on messages that stop going out.
    assert "linli_outbox_due " in page and "linli_outbox_oldest_due_seconds " in page
