"""Per-person caps in the database: daily limits and lockouts that hold across processes.

A counter is one row per (key, bucket), created with ON CONFLICT DO NOTHING and moved by a
guarded UPDATE (`count < limit`), so of any number of simultaneous attempts exactly
`limit` get through, whichever process they land on, and Redis being down changes nothing.
Call these inside the transaction of the action they count, so a refused or failed action
takes its count back with it.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import F

from backend.core.clock import clock, to_local
from backend.core.models import UsageCounter


def local_day(moment: datetime | None = None) -> str:
    """The local date of `moment` (now by default) as a bucket name."""
    moment = moment or clock.now()
    return to_local(moment).date().isoformat()


def window(seconds: int, moment: datetime | None = None) -> str:
    """The numbered fixed window of `seconds` that `moment` (now by default) falls in."""
    moment = moment or clock.now()
    return f"w{seconds}:{int(moment.timestamp()) // seconds}"


async def take(key: str, *, bucket: str, limit: int) -> bool:
    """Count one use of `key` in `bucket` if fewer than `limit` were counted; False when the
    cap is reached (nothing counted then)."""
    now = clock.now()
    await UsageCounter.bulk_create(
        [UsageCounter(key=key, bucket=bucket, count=0, updated_at=now)], ignore_conflicts=True
    )
    taken = await UsageCounter.filter(key=key, bucket=bucket, count__lt=limit).update(
        count=F("count") + 1, updated_at=now
    )
    return bool(taken)


async def give_back(key: str, *, bucket: str) -> None:
    """Uncount one use taken by `take` that turned out not to be one (never below zero)."""
    await UsageCounter.filter(key=key, bucket=bucket, count__gt=0).update(
        count=F("count") - 1, updated_at=clock.now()
    )


async def used(key: str, *, bucket: str) -> int:
    """How many uses of `key` were counted in `bucket`."""
    row = await UsageCounter.get_or_none(key=key, bucket=bucket)
    return row.count if row else 0


async def purge_before(moment: datetime) -> int:
    """Delete counters last moved before `moment` (the retention job)."""
    return await UsageCounter.filter(updated_at__lt=moment).delete()
