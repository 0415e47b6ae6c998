"""Retention: personal data and bookkeeping are kept only as long as they serve a purpose.

- Outbox messages that reached a final status lose their context (names, titles, times)
  after `retention_outbox_context_days`; the row stays, so delivery counts still add up,
  until `retention_outbox_days`.
- Idempotency records past `idempotency_ttl_seconds` (a retry that late runs again anyway).
- Usage counters (daily limits, lockouts) last moved `retention_usage_counter_days` ago.
- Wishes closed, withdrawn, removed or rejected `retention_wish_days` ago lose their address
  and fulfilment photo (the wish itself stays: points and thanks refer to it).

Official-account callback nonces need no purge: they live in the key-value store with a TTL
of ten minutes. Every purge works in batches of ids, one short statement each, so a large
backlog never holds a long lock; it is safe to run twice or beside another bot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from backend.core import quota
from backend.core.clock import clock
from backend.core.config import Settings
from backend.core.models import IdempotencyRecord, OutboxMessage
from backend.wishes.models import Wish, WishPhoto

log = logging.getLogger("linli.bot.retention")

PURGE_EVERY_SECONDS = 6 * 3600.0
BATCH_SIZE = 500
# A run does at most this many batches per kind; the rest waits for the next run.
MAX_BATCHES = 200
FINAL_OUTBOX_STATUSES = ("sent", "skipped", "refused", "failed")
FINAL_WISH_STATUSES = ("closed", "withdrawn", "removed", "rejected")


async def _in_batches(select: QuerySet, apply) -> int:
    """Apply `apply(ids)` to the rows of `select`, BATCH_SIZE ids at a time; the total done."""
    total = 0
    for _ in range(MAX_BATCHES):
        ids = await select.limit(BATCH_SIZE).values_list("id", flat=True)
        if not ids:
            break
        total += await apply(list(ids))
        if len(ids) < BATCH_SIZE:
            break
    return total


async def purge_outbox_contexts(*, before: datetime) -> int:
    """Empty the context of final outbox rows created before `before`; how many."""
    select = OutboxMessage.filter(status__in=FINAL_OUTBOX_STATUSES, created_at__lt=before).exclude(
        context={}
    )
    return await _in_batches(
        select.order_by("id"),
        lambda ids: OutboxMessage.filter(id__in=ids).update(context={}),
    )


async def purge_outbox_rows(*, before: datetime) -> int:
    """Delete final outbox rows created before `before`; how many."""
    select = OutboxMessage.filter(status__in=FINAL_OUTBOX_STATUSES, created_at__lt=before)
    return await _in_batches(
        select.order_by("id"),
        lambda ids: OutboxMessage.filter(id__in=ids, status__in=FINAL_OUTBOX_STATUSES).delete(),
    )


async def purge_idempotency_records(*, before: datetime) -> int:
    """Delete idempotency records started before `before`; how many."""
    select = IdempotencyRecord.filter(created_at__lt=before).order_by("id")
    return await _in_batches(
        select,
        lambda ids: IdempotencyRecord.filter(id__in=ids, created_at__lt=before).delete(),
    )


def _ended_before(before: datetime, prefix: str = "") -> Q:
    """The wish reached its final status before `before`, judged by the last time recorded
    for it: closed (closed and removed wishes), else reviewed (rejected), else created
    (a wish withdrawn before review)."""
    closed, reviewed, created = (
        f"{prefix}{name}" for name in ("closed_at", "reviewed_at", "created_at")
    )
    return (
        Q(**{f"{closed}__lt": before})
        | Q(**{f"{closed}__isnull": True, f"{reviewed}__lt": before})
        | Q(**{f"{closed}__isnull": True, f"{reviewed}__isnull": True, f"{created}__lt": before})
    )


async def purge_wish_addresses(*, before: datetime) -> int:
    """Blank the address of wishes that ended before `before`; how many."""
    select = (
        Wish.filter(_ended_before(before), status__in=FINAL_WISH_STATUSES)
        .exclude(address="")
        .order_by("id")
    )
    return await _in_batches(
        select,
        lambda ids: Wish.filter(id__in=ids, status__in=FINAL_WISH_STATUSES).update(address=""),
    )


async def purge_wish_photos(*, before: datetime) -> int:
    """Delete the fulfilment photos of wishes that ended before `before`; how many."""
    select = WishPhoto.filter(
        _ended_before(before, "wish__"), wish__status__in=FINAL_WISH_STATUSES
    ).order_by("id")
    return await _in_batches(select, lambda ids: WishPhoto.filter(id__in=ids).delete())


async def purge_expired_data(settings: Settings) -> None:
    """Run every purge with the periods from the settings."""
    now = clock.now()

    def days(n: int) -> datetime:
        return now - timedelta(days=n)

    done = {
        "outbox contexts": await purge_outbox_contexts(
            before=days(settings.retention_outbox_context_days)
        ),
        "outbox rows": await purge_outbox_rows(before=days(settings.retention_outbox_days)),
        "idempotency records": await purge_idempotency_records(
            before=now - timedelta(seconds=settings.idempotency_ttl_seconds)
        ),
        "usage counters": await quota.purge_before(days(settings.retention_usage_counter_days)),
        "wish addresses": await purge_wish_addresses(before=days(settings.retention_wish_days)),
        "wish photos": await purge_wish_photos(before=days(settings.retention_wish_days)),
    }
    purged = {kind: count for kind, count in done.items() if count}
    if purged:
        log.info("retention purge: %s", ", ".join(f"{n} {kind}" for kind, n in purged.items()))
