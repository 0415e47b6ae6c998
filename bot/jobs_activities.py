"""Periodic activity jobs: reminders an hour before, the draw at booking close, no-shows after.

Each is one call into backend.activities (reminders, draws, attendance), safe to run twice
or in parallel: the draw and the no-show marking claim their activity with a guarded
UPDATE, and a reminder's outbox dedupe key lets it through once.
"""

from __future__ import annotations

import logging

from backend.activities import attendance, draws, reminders
from backend.core.config import Settings

log = logging.getLogger("linli.bot.activities")

REMINDERS_EVERY_SECONDS = 60.0
# Short: a hot class's results should reach people soon after booking closes.
DRAWS_EVERY_SECONDS = 15.0
NO_SHOWS_EVERY_SECONDS = 300.0


async def send_activity_reminders(settings: Settings) -> None:
    sent = await reminders.send_reminders()
    if sent:
        log.info("activity reminders queued for %s bookings (duplicates ignored)", sent)


async def run_activity_draws(settings: Settings) -> None:
    drawn = await draws.run_due_draws()
    if drawn:
        log.info("drew %s activities", drawn)


async def mark_activity_no_shows(settings: Settings) -> None:
    marked = await attendance.mark_no_shows()
    if marked:
        log.info("marked %s bookings as no-shows", marked)
