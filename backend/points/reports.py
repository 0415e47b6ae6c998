"""Reports over the ledger: leaderboards of points earned, and the staff's Excel export.

Both read the community and unit each ledger row recorded when it was written, so a
resident who moves takes their new points to the new community and leaves the old ones.
"""

from __future__ import annotations

from datetime import date, timedelta

from tortoise.functions import Sum

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import local_midnight, local_today
from backend.core.errors import Invalid, NotFound
from backend.core.security import decrypt_field, mask_phone
from backend.core.text import check_date
from backend.core.xlsx import Spreadsheet
from backend.orgs.models import Community, Unit
from backend.points import ledger
from backend.points.models import PointsLedgerEntry, PointsPreference
from backend.points.views import Leaderboard, LeaderRow, Period

# Spending, refunds of spending and expiry move balances but are not points earned.
NOT_EARNED = (
    ledger.SOURCE_REWARD,
    ledger.SOURCE_REFUND,
    ledger.SOURCE_EXPIRY,
)
ANONYMOUS = "匿名邻居"
MAX_EXPORT_DAYS = 366
EXPORT_PAGE = 2000


def period_bounds(period: Period, on_date: date) -> tuple[date, date]:
    """The first day of the month or year containing `on_date`, and the first day after it."""
    if period == "year":
        return date(on_date.year, 1, 1), date(on_date.year + 1, 1, 1)
    start = on_date.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


async def get_leaderboard(
    *,
    viewer: User,
    community_id: int | None = None,
    unit_id: int | None = None,
    period: Period = "month",
    on_date: date | None = None,
    limit: int = 20,
) -> Leaderboard:
    """The top earners of a community (the viewer's own by default) or a unit over the
    month or year containing `on_date`. Only those who opted in are named."""
    if community_id is not None and unit_id is not None:
        raise Invalid(fields={"unit_id": "社区和单位只能选一个"})
    if unit_id is not None:
        unit = await Unit.get_or_none(id=unit_id)
        if unit is None:
            raise NotFound("单位不存在")
        scope, scope_id, scope_name = "unit", unit.id, unit.name
    else:
        community_id = community_id or viewer.community_id
        if community_id is None:
            raise Invalid(fields={"community_id": "请先在「我的」中选择居住社区"})
        community = await Community.get_or_none(id=community_id)
        if community is None:
            raise NotFound("社区不存在")
        scope, scope_id, scope_name = "community", community.id, community.name
    check_date(on_date, field="date")
    start, end = period_bounds(period, on_date or local_today())
    earned = PointsLedgerEntry.filter(
        created_at__gte=local_midnight(start), created_at__lt=local_midnight(end), delta__gt=0
    ).exclude(source_type__in=NOT_EARNED)
    earned = earned.filter(
        **({"unit_id": scope_id} if scope == "unit" else {"community_id": scope_id})
    )
    top = (
        await earned.annotate(total=Sum("delta"))
        .group_by("user_id")
        .order_by("-total", "user_id")
        .limit(max(1, min(limit, 100)))
        .values_list("user_id", "total")
    )
    user_ids = [user_id for user_id, _ in top]
    names = dict(await User.filter(id__in=user_ids).values_list("id", "nickname"))
    named = set(
        await PointsPreference.filter(user_id__in=user_ids, leaderboard_opt_in=True).values_list(
            "user_id", flat=True
        )
    )
    rows: list[LeaderRow] = []
    for position, (user_id, total) in enumerate(top, start=1):
        # Equal totals share a rank (1, 2, 2, 4).
        rank = rows[-1].rank if rows and rows[-1].points == total else position
        name = (names.get(user_id) or "邻居") if user_id in named else ANONYMOUS
        rows.append(LeaderRow(rank=rank, name=name, points=total, is_me=user_id == viewer.id))
    mine = (
        await earned.filter(user_id=viewer.id)
        .annotate(total=Sum("delta"))
        .values_list("total", flat=True)
    )
    preference = await ledger.get_preferences(user_id=viewer.id)
    return Leaderboard(
        scope=scope,
        scope_id=scope_id,
        scope_name=scope_name,
        period=period,
        start_date=start,
        end_date=end - timedelta(days=1),
        rows=rows,
        my_points=(mine[0] if mine else None) or 0,
        opted_in=preference.leaderboard_opt_in,
    )


# --- the Excel export ---

KIND_NAMES = {
    "earned": "发放",
    "adjust_up": "调整增加",
    "adjust_down": "调整扣减",
    "spent": "兑换消费",
    "refund": "兑换退还",
    "expired": "过期清零",
    "other": "其他扣减",
}


def entry_kind(source_type: str, delta: int) -> str:
    """How a ledger row counts in the export's summary."""
    if source_type == ledger.SOURCE_ADJUSTMENT:
        return "adjust_up" if delta > 0 else "adjust_down"
    if source_type == ledger.SOURCE_REWARD:
        return "spent"
    if source_type == ledger.SOURCE_REFUND:
        return "refund"
    if source_type == ledger.SOURCE_EXPIRY:
        return "expired"
    return "earned" if delta >= 0 else "other"


async def export_ledger(
    *, actor: User, community_id: int, start_date: date, end_date: date
) -> tuple[str, bytes]:
    """An Excel workbook of the points issued and spent in a community between two local
    dates (inclusive), for its staff: a summary sheet and every ledger row. Returns the
    file name and the bytes."""
    community = await Community.get_or_none(id=community_id)
    if community is None:
        raise NotFound("社区不存在")
    await accounts_service.require_staff_of(actor, community_id)
    check_date(start_date, field="start_date")
    check_date(end_date, field="end_date")
    if end_date < start_date:
        raise Invalid(fields={"end_date": "结束日期不能早于开始日期"})
    if (end_date - start_date).days >= MAX_EXPORT_DAYS:
        raise Invalid(fields={"end_date": f"一次最多导出 {MAX_EXPORT_DAYS} 天"})
    book = Spreadsheet()
    summary = book.sheet("汇总", caption=f"{community.name} 积分发放与使用", widths=[24, 16])
    detail = book.sheet(
        "明细",
        header=[
            "时间",
            "居民编号",
            "昵称",
            "手机号",
            "类别",
            "积分变动",
            "变动后余额",
            "事由",
            "来源",
            "操作人编号",
        ],
        widths=[18, 10, 16, 14, 10, 10, 12, 32, 24, 12],
    )
    totals = dict.fromkeys(KIND_NAMES, 0)
    people: dict[int, tuple[str, str]] = {}
    query = PointsLedgerEntry.filter(
        community_id=community_id,
        created_at__gte=local_midnight(start_date),
        created_at__lt=local_midnight(end_date + timedelta(days=1)),
    )
    last_id = 0
    while True:
        rows = await query.filter(id__gt=last_id).order_by("id").limit(EXPORT_PAGE)
        if not rows:
            break
        missing = {r.user_id for r in rows} - people.keys()
        for user in await User.filter(id__in=missing):
            people[user.id] = (user.nickname, mask_phone(decrypt_field(user.phone_encrypted)) or "")
        for row in rows:
            kind = entry_kind(row.source_type, row.delta)
            totals[kind] += row.delta
            nickname, phone = people.get(row.user_id, ("", ""))
            detail.append(
                [
                    row.created_at,
                    row.user_id,
                    nickname,
                    phone,
                    KIND_NAMES[kind],
                    row.delta,
                    row.balance_after,
                    row.reason,
                    f"{row.source_type}:{row.source_id}",
                    row.actor_id,
                ]
            )
        last_id = rows[-1].id
    summary.append(["开始日期", start_date])
    summary.append(["结束日期", end_date])
    summary.blank()
    summary.append(["类别", "积分"], bold=True)
    for kind, name in KIND_NAMES.items():
        summary.append([name, totals[kind]])
    issued = totals["earned"] + totals["adjust_up"]
    used = -(totals["spent"] + totals["refund"])
    summary.blank()
    summary.append(["合计发放", issued], bold=True)
    summary.append(["合计兑换（扣除退还）", used], bold=True)
    summary.append(["合计过期", -totals["expired"]], bold=True)
    filename = f"points-{community.slug}-{start_date:%Y%m%d}-{end_date:%Y%m%d}.xlsx"
    return filename, book.to_bytes()
