"""Periodic party-member jobs: the monthly service summary and forgotten check-ins.

Each is one call into backend.party.jobs, safe to run twice or in parallel: a summary's
outbox dedupe key lets it through once per member and month, and a check-in expires by a
guarded UPDATE that only an open record passes.
"""

from __future__ import annotations

import logging

from backend.core.config import Settings
from backend.party import jobs as party_jobs

log = logging.getLogger("linli.bot.party")

# Hourly: the summary goes out early on the 1st, and later runs that month are no-ops.
MONTHLY_SUMMARY_EVERY_SECONDS = 3600.0
EXPIRE_CHECKINS_EVERY_SECONDS = 600.0


async def send_party_monthly_summaries(settings: Settings) -> None:
    queued = await party_jobs.send_monthly_summaries()
    if queued:
        log.info("party monthly summaries offered for %s members (duplicates ignored)", queued)


async def expire_party_checkins(settings: Settings) -> None:
    expired = await party_jobs.expire_stale_records()
    if expired:
        log.info("expired %s forgotten party check-ins", expired)
