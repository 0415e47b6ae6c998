"""Service hours: the service term, minutes split by local day, report periods, and the
credited minutes per member, post or community."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.functions import Sum
from tortoise.queryset import QuerySet

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import local_today
from backend.core.errors import Forbidden, Invalid
from backend.core.text import check_date
from backend.party.models import ServiceRecordDay
from backend.party.names import community_names, member_names, post_titles
from backend.party.views import HoursRow


def current_term() -> int:
    """The service term (year) of today."""
    return local_today().year


def split_by_local_day(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[date, int]]:
    """Whole minutes from `start` to `end` on each local day they touch.

    Each day gets the minutes elapsed by its end less those elapsed by its start, so the
    parts always add up to the whole minutes of the span.
    """
    if end <= start:
        return []
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    parts: list[tuple[date, int]] = []
    day = start_utc.astimezone(tz).date()
    elapsed_before = 0
    while True:
        boundary = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        segment_end = min(boundary, end_utc)
        elapsed = int((segment_end - start_utc).total_seconds()) // 60
        if elapsed > elapsed_before:
            parts.append((day, elapsed - elapsed_before))
        elapsed_before = elapsed
        if segment_end >= end_utc:
            return parts
        day += timedelta(days=1)


async def minutes_sum(queryset: QuerySet) -> int:
    """The credited minutes of the `ServiceRecordDay` rows a queryset selects."""
    value = await queryset.annotate(total=Sum("minutes")).first().values_list("total", flat=True)
    return int(value or 0)


def date_range(start_date: date | None, end_date: date | None) -> tuple[date, date]:
    """The report period (default: this year to today), bounded before any arithmetic."""
    check_date(start_date, field="start_date")
    check_date(end_date, field="end_date")
    end = end_date or local_today()
    start = start_date or date(end.year, 1, 1)
    if start > end:
        raise Invalid(fields={"start_date": "开始日期不能晚于结束日期"})
    if (end - start).days > 366 * 5:
        raise Invalid(fields={"start_date": "日期范围不能超过 5 年"})
    return start, end


async def service_hours(
    *,
    actor: User,
    group_by: str,
    community_id: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> list[HoursRow]:
    """Credited service minutes per member, post or community in a local date range,
    within the actor's communities, most first."""
    start, end = date_range(start_date, end_date)
    queryset = ServiceRecordDay.filter(service_date__gte=start, service_date__lte=end)
    if community_id is not None:
        await accounts_service.require_staff_of(actor, community_id)
        queryset = queryset.filter(community_id=community_id)
    else:
        scope = await accounts_service.staff_community_ids(actor)
        if scope is not None:
            if not scope:
                raise Forbidden("只有社区工作人员可以查看服务时长")
            queryset = queryset.filter(community_id__in=scope)
    column = {"member": "user_id", "post": "post_id", "community": "community_id"}.get(group_by)
    if column is None:
        raise Invalid(fields={"group_by": "只能按 member、post 或 community 汇总"})
    rows = (
        await queryset.annotate(total=Sum("minutes")).group_by(column).values_list(column, "total")
    )
    keys = [key for key, _ in rows]
    if group_by == "member":
        names = await member_names(keys)
    elif group_by == "post":
        names = await post_titles(keys)
    else:
        names = await community_names(keys)
    result = [
        HoursRow(key=key or 0, name=names.get(key, "社区任务（未关联岗位）"), minutes=int(total))
        for key, total in rows
    ]
    return sorted(result, key=lambda r: (-r.minutes, r.key))
