"""The bot inside the app process (`linli run`): started in the running loop, stopped cleanly."""

from __future__ import annotations

import asyncio

import pytest

from backend.core.config import Settings
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue
from bot import scheduler
from bot.runner import BotRunner

pytestmark = pytest.mark.usefixtures("db")


async def test_runner_relays_and_runs_jobs_until_stopped(
    settings: Settings, fake_wechat, monkeypatch
):
    job_ran = asyncio.Event()

    async def job(_: Settings) -> None:
        job_ran.set()

    monkeypatch.setattr(scheduler, "JOBS", [scheduler.Job("test-runner-job", 3600, job)])
    runner = BotRunner(settings.model_copy(update={"bot_poll_seconds": 0.05}))
    runner.start()
    try:
        await enqueue(
            template_key="notice",
            context={"title": "测试"},
            dedupe_key="runner:1",
            channel="wecom",
            recipient="robot",
        )
        for _ in range(500):
            if await OutboxMessage.filter(dedupe_key="runner:1", status="sent").exists():
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the runner did not relay the message")
        await asyncio.wait_for(job_ran.wait(), timeout=10)
    finally:
        await asyncio.wait_for(runner.stop(), timeout=10)

    assert len(fake_wechat.calls_to("/cgi-bin/webhook/send")) == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("linli-bot")]
