"""Periodic jobs: each interval runs once across bot processes."""

from __future__ import annotations

import asyncio

import pytest

from backend.core.config import Settings
from bot.scheduler import Job, Scheduler

pytestmark = pytest.mark.usefixtures("db")


async def test_a_job_runs_once_per_interval_across_schedulers(settings: Settings):
    runs: list[str] = []

    async def tick(_: Settings) -> None:
        runs.append("tick")

    job = Job("test-tick", every_seconds=60, run=tick)
    schedulers = [Scheduler(settings, [job]) for _ in range(4)]

    results = await asyncio.gather(*(s.run_due() for s in schedulers))

    assert runs == ["tick"]
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    # The same scheduler does not even ask again before the interval has passed.
    assert await schedulers[0].run_due() == []


async def test_a_failing_job_does_not_stop_the_others(settings: Settings):
    runs: list[str] = []

    async def broken(_: Settings) -> None:
        raise RuntimeError("boom")

    async def fine(_: Settings) -> None:
        runs.append("fine")

    scheduler = Scheduler(settings, [Job("test-broken", 60, broken), Job("test-fine", 60, fine)])
    assert await scheduler.run_due() == ["test-broken", "test-fine"]
    assert runs == ["fine"]
