"""Scheduler jobs of the micro-wishes: release claims not fulfilled in time."""

from __future__ import annotations

import logging

from backend.core.config import Settings
from backend.wishes import service as wishes_service

log = logging.getLogger("linli.bot.jobs.wishes")

RELEASE_EVERY_SECONDS = 60.0


async def release_overdue_wish_claims(settings: Settings) -> None:
    """Reopen overdue claims and tell the posters (guarded, so safe beside another bot)."""
    released = await wishes_service.release_overdue_claims()
    if released:
        log.info("released %d overdue wish claims", released)
