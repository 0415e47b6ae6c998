"""Points test helpers: earning and spending the plain way, and Shanghai wall-clock times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from backend.points import service
from backend.points.models import PointsLedgerEntry

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """An aware Shanghai time, e.g. local(2025, 4, 20, 10)."""
    return datetime(*args, tzinfo=SHANGHAI)


async def award(user_id: int, amount: int, source_id: str) -> PointsLedgerEntry | None:
    """Points for taking part in activity `source_id`."""
    return await service.award(
        user_id=user_id,
        amount=amount,
        source_type="activity",
        source_id=source_id,
        reason="参加活动",
    )


async def spend(user_id: int, amount: int, source_id: str) -> PointsLedgerEntry | None:
    """Points spent on reward `source_id`."""
    return await service.spend(
        user_id=user_id, amount=amount, source_type="reward", source_id=source_id, reason="兑换礼品"
    )
