"""Periodic jobs of the bot (activity reminders, wish releases, point expiries …).

Several bot processes may run. Each interval of a job belongs to whichever process first
sets the job's slot key in the key-value store (`SET NX` with the interval as TTL), so
normally one process runs it. The key-value store coordinates, it is not the source of
truth: a job must stay correct when it runs twice (guarded updates, unique keys), as it
may when Redis restarts or when a run takes longer than its interval. While Redis does not
answer at all, every process runs its jobs on its own schedule.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from backend.core.config import Settings
from backend.core.redis import KeyValueUnavailable, get_kv
from bot import (
    jobs_activities,
    jobs_notices,
    jobs_party,
    jobs_points,
    jobs_retention,
    jobs_wishes,
)

log = logging.getLogger("linli.bot.scheduler")


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[Settings], Awaitable[None]]


# The capabilities add their jobs here; the bot runs every job listed.
JOBS: list[Job] = [
    Job(
        "wishes.release_overdue_claims",
        jobs_wishes.RELEASE_EVERY_SECONDS,
        jobs_wishes.release_overdue_wish_claims,
    ),
    Job("notices.fan_out", jobs_notices.FANOUT_EVERY_SECONDS, jobs_notices.fan_out_notices),
    Job(
        "activities.reminders",
        jobs_activities.REMINDERS_EVERY_SECONDS,
        jobs_activities.send_activity_reminders,
    ),
    Job(
        "activities.draws",
        jobs_activities.DRAWS_EVERY_SECONDS,
        jobs_activities.run_activity_draws,
    ),
    Job(
        "activities.no_shows",
        jobs_activities.NO_SHOWS_EVERY_SECONDS,
        jobs_activities.mark_activity_no_shows,
    ),
    Job("points.expire", jobs_points.EXPIRE_BATCHES_EVERY_SECONDS, jobs_points.expire_points),
    Job(
        "points.expire_redemptions",
        jobs_points.EXPIRE_REDEMPTIONS_EVERY_SECONDS,
        jobs_points.expire_redemptions,
    ),
    Job(
        "points.remind_pickups",
        jobs_points.REMIND_PICKUPS_EVERY_SECONDS,
        jobs_points.remind_pickups,
    ),
    Job(
        "points.notify_expiring",
        jobs_points.NOTIFY_EXPIRING_EVERY_SECONDS,
        jobs_points.notify_expiring_points,
    ),
    Job(
        "party.monthly_summaries",
        jobs_party.MONTHLY_SUMMARY_EVERY_SECONDS,
        jobs_party.send_party_monthly_summaries,
    ),
    Job(
        "party.expire_checkins",
        jobs_party.EXPIRE_CHECKINS_EVERY_SECONDS,
        jobs_party.expire_party_checkins,
    ),
    Job(
        "retention.purge",
        jobs_retention.PURGE_EVERY_SECONDS,
        jobs_retention.purge_expired_data,
    ),
]


def slot_key(name: str) -> str:
    return f"job-slot:{name}"


class Scheduler:
    def __init__(self, settings: Settings, jobs: Iterable[Job] | None = None) -> None:
        self.settings = settings
        self.jobs = list(JOBS if jobs is None else jobs)
        self.owner = uuid.uuid4().hex
        self._next_check: dict[str, float] = {}

    async def run_due(self) -> list[str]:
        """Run each job whose interval has come unless another process took it; returns names."""
        ran: list[str] = []
        for job in self.jobs:
            now = time.monotonic()
            if now < self._next_check.get(job.name, 0.0):
                continue
            self._next_check[job.name] = now + job.every_seconds
            try:
                mine = await get_kv().set(
                    slot_key(job.name), self.owner, ttl=job.every_seconds, nx=True
                )
            except KeyValueUnavailable:
                # Without the store, run it anyway: a job is correct when run twice, and a
                # Redis outage must not stop reminders or releases (the breaker logs it once).
                mine = True
            except Exception:
                log.exception("job %s: key-value store unavailable, skipped this round", job.name)
                continue
            if not mine:
                continue
            started = time.monotonic()
            try:
                await job.run(self.settings)
            except Exception:
                log.exception("job %s failed", job.name)
            else:
                # Debug: some jobs run every second.
                log.debug("job %s ran in %.1f s", job.name, time.monotonic() - started)
            ran.append(job.name)
        return ran
