"""Periodic points jobs: expire batches past their date, expire unclaimed redemptions
(returning points and stock), remind pickup deadlines, announce points expiring next month.

Each is a call into backend.points, safe to run twice or in parallel: expiry is guarded on
the batch's and the redemption's state, and every notice is claimed by a guarded flag
before it is written to the outbox.
"""

from __future__ import annotations

import logging

from backend.core.config import Settings
from backend.points import ledger as points_ledger
from backend.points import rewards as points_rewards

log = logging.getLogger("linli.bot.points")

EXPIRE_BATCHES_EVERY_SECONDS = 300.0
EXPIRE_REDEMPTIONS_EVERY_SECONDS = 60.0
REMIND_PICKUPS_EVERY_SECONDS = 300.0
NOTIFY_EXPIRING_EVERY_SECONDS = 3600.0
# A run does at most this many rounds, so one job never holds the scheduler for long.
MAX_ROUNDS = 20


async def expire_points(settings: Settings) -> None:
    total = 0
    for _ in range(MAX_ROUNDS):
        done = await points_ledger.expire_due_batches(limit=points_ledger.BATCH_SIZE)
        total += done
        if done < points_ledger.BATCH_SIZE:
            break
    if total:
        log.info("expired %d points batches", total)


async def expire_redemptions(settings: Settings) -> None:
    expired = await points_rewards.expire_unclaimed_redemptions()
    if expired:
        log.info("expired %d unclaimed redemptions", expired)


async def remind_pickups(settings: Settings) -> None:
    sent = await points_rewards.remind_pickup_deadlines()
    if sent:
        log.info("reminded %d redemption holders of their pickup deadline", sent)


async def notify_expiring_points(settings: Settings) -> None:
    total = 0
    for _ in range(MAX_ROUNDS):
        sent = await points_ledger.notify_expiring_points(limit=points_ledger.BATCH_SIZE)
        total += sent
        if sent < points_ledger.BATCH_SIZE:
            break
    if total:
        log.info("told %d batches' holders that their points expire soon", total)
