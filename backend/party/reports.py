"""The 双报到 report: per work unit and member, what party members did in a date range,
as rows for the staff page and as an Excel workbook for each unit's party organisation.

Activities attended and wishes fulfilled come from the activities and wishes models
(attended bookings of activities that started in the range, wishes the member claimed
and fulfilled in the range).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import models as activities_models
from backend.core.clock import local_midnight, local_today
from backend.core.errors import Forbidden
from backend.core.xlsx import Spreadsheet
from backend.party.hours import date_range
from backend.party.models import PartyRegistration, PostAssignment, ServiceRecordDay
from backend.party.names import community_names
from backend.party.registrations import roster_for_export
from backend.party.views import (
    MemberReportRow,
    PartyReport,
    RosterFilter,
    UnitReportRow,
    registration_org_phone,
    registration_phone,
    status_name,
)
from backend.wishes import models as wishes_models

# Activity bookings that count as attended, wishes that count as fulfilled.
ATTENDED_BOOKING = "attended"
FULFILLED_WISHES = ("fulfilled", "closed")


async def _count_by_user(queryset, user_column: str) -> dict[int, int]:
    rows = (
        await queryset.annotate(n=Count("id")).group_by(user_column).values_list(user_column, "n")
    )
    return {user_id: int(n) for user_id, n in rows}


async def party_report(
    *,
    actor: User,
    community_id: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> PartyReport:
    """Per member and work unit, for a date range: report-in status, posts held, hours
    served there, activities attended and wishes fulfilled (the actor's communities)."""
    start, end = date_range(start_date, end_date)
    start_at, end_at = local_midnight(start), local_midnight(end + timedelta(days=1))
    if community_id is not None:
        await accounts_service.require_staff_of(actor, community_id)
        scope: list[int] | None = [community_id]
    else:
        scope = await accounts_service.staff_community_ids(actor)
        if scope is not None and not scope:
            raise Forbidden("只有社区工作人员可以查看双报到报表")
    in_scope = {} if scope is None else {"community_id__in": scope}

    # Who was reported in at some point of the range (never-approved rejections left out).
    registrations = (
        await PartyRegistration.filter(created_at__lt=end_at, **in_scope)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start_at))
        .filter(~Q(status="rejected") | Q(approved_at__isnull=False))
        .order_by("id")
    )
    latest: dict[int, PartyRegistration] = {}
    for registration in registrations:
        latest[registration.user_id] = registration
    user_ids = list(latest)
    minutes: dict[int, int] = defaultdict(int)
    posts: dict[int, list[str]] = defaultdict(list)
    activities: dict[int, int] = {}
    wishes: dict[int, int] = {}
    if user_ids:
        for user_id, total in (
            await ServiceRecordDay.filter(
                user_id__in=user_ids, service_date__gte=start, service_date__lte=end, **in_scope
            )
            .annotate(total=Sum("minutes"))
            .group_by("user_id")
            .values_list("user_id", "total")
        ):
            minutes[user_id] = int(total or 0)
        held = (
            await PostAssignment.filter(user_id__in=user_ids, started_at__lt=end_at, **in_scope)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start_at))
            .order_by("id")
            .values_list("user_id", "post__title")
        )
        for user_id, title in held:
            if title not in posts[user_id]:
                posts[user_id].append(title)
        activities = await _count_by_user(
            activities_models.Booking.filter(
                user_id__in=user_ids,
                status=ATTENDED_BOOKING,
                activity__starts_at__gte=start_at,
                activity__starts_at__lt=end_at,
            ),
            "user_id",
        )
        wishes = await _count_by_user(
            wishes_models.Wish.filter(
                claimer_id__in=user_ids,
                status__in=FULFILLED_WISHES,
                fulfilled_at__gte=start_at,
                fulfilled_at__lt=end_at,
            ),
            "claimer_id",
        )
    names = await community_names(r.community_id for r in latest.values())
    members = [
        MemberReportRow(
            user_id=r.user_id,
            name=r.name,
            phone=registration_phone(r),
            community=names.get(r.community_id, ""),
            work_unit=r.work_unit,
            party_org=r.party_org,
            status=status_name(r.status),
            approved=r.status == "approved",
            posts=posts.get(r.user_id, []),
            minutes=minutes.get(r.user_id, 0),
            activities=activities.get(r.user_id, 0),
            wishes=wishes.get(r.user_id, 0),
        )
        for r in latest.values()
    ]
    members.sort(key=lambda m: (m.work_unit, m.name, m.user_id))
    units: dict[str, UnitReportRow] = {}
    for member in members:
        unit = units.setdefault(
            member.work_unit,
            UnitReportRow(member.work_unit, [], 0, 0, 0, 0, 0, 0),
        )
        if member.party_org not in unit.party_orgs:
            unit.party_orgs.append(member.party_org)
        unit.members += 1
        unit.approved += member.approved
        unit.with_post += bool(member.posts)
        unit.minutes += member.minutes
        unit.activities += member.activities
        unit.wishes += member.wishes
    community = None
    if scope is not None and len(scope) == 1:
        community = (await community_names(scope)).get(scope[0])
    return PartyReport(
        start_date=start,
        end_date=end,
        community=community,
        units=sorted(units.values(), key=lambda u: (-u.minutes, u.work_unit)),
        members=members,
    )


# --- Excel ---

UNIT_HEADER = [
    "工作单位",
    "所在党组织",
    "报到党员",
    "已报到",
    "认领岗位人数",
    "服务时长（小时）",
    "参加活动（次）",
    "认领完成心愿（个）",
]
MEMBER_HEADER = [
    "姓名",
    "手机号",
    "报到社区",
    "工作单位",
    "所在党组织",
    "报到状态",
    "认领岗位",
    "服务时长（小时）",
    "参加活动（次）",
    "认领完成心愿（个）",
]


def report_workbook(report: PartyReport) -> bytes:
    """The report as an .xlsx: a sheet per work unit totals and one per member, each with
    a total row."""
    book = Spreadsheet()
    where = report.community or "石门二路街道"
    period = f"{report.start_date:%Y-%m-%d} 至 {report.end_date:%Y-%m-%d}"
    units = book.sheet(
        "按单位汇总",
        caption=f"{where} 在职党员双报到情况（{period}）",
        header=UNIT_HEADER,
        widths=[28, 28, 10, 10, 14, 16, 14, 18],
    )
    for u in report.units:
        units.append(
            [
                u.work_unit,
                "、".join(u.party_orgs),
                u.members,
                u.approved,
                u.with_post,
                u.hours,
                u.activities,
                u.wishes,
            ]
        )
    units.append(
        [
            "合计",
            "",
            sum(u.members for u in report.units),
            sum(u.approved for u in report.units),
            sum(u.with_post for u in report.units),
            report.total_hours,
            sum(u.activities for u in report.units),
            sum(u.wishes for u in report.units),
        ],
        bold=True,
    )
    members = book.sheet(
        "党员明细",
        caption=f"{where} 在职党员服务明细（{period}）",
        header=MEMBER_HEADER,
        widths=[12, 14, 14, 28, 28, 10, 24, 16, 14, 18],
    )
    for m in report.members:
        members.append(
            [
                m.name,
                m.phone or "",
                m.community,
                m.work_unit,
                m.party_org,
                m.status,
                "、".join(m.posts),
                m.hours,
                m.activities,
                m.wishes,
            ]
        )
    members.append(
        [
            "合计",
            "",
            "",
            "",
            "",
            "",
            "",
            report.total_hours,
            sum(m.activities for m in report.members),
            sum(m.wishes for m in report.members),
        ],
        bold=True,
    )
    return book.to_bytes()


async def report_xlsx(
    *,
    actor: User,
    community_id: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> bytes:
    """The 双报到 report of the actor's communities as an Excel file."""
    report = await party_report(
        actor=actor, community_id=community_id, start_date=start_date, end_date=end_date
    )
    return report_workbook(report)


ROSTER_HEADER = [
    "姓名",
    "手机号",
    "报到社区",
    "居住楼栋",
    "工作单位",
    "所在党组织",
    "党组织联系人",
    "党组织电话",
    "特长",
    "可服务时间",
    "状态",
    "提交时间",
]


async def roster_xlsx(*, actor: User, filters: RosterFilter) -> bytes:
    """The roster the filter matches as an Excel file (phones masked)."""
    rows = await roster_for_export(actor=actor, filters=filters)
    names = await community_names(r.community_id for r in rows)
    book = Spreadsheet()
    sheet = book.sheet(
        "党员名册",
        caption=f"在职党员报到名册（{local_today():%Y-%m-%d} 导出，共 {len(rows)} 人）",
        header=ROSTER_HEADER,
        widths=[12, 14, 14, 16, 28, 28, 14, 14, 28, 28, 10, 18],
    )
    for r in rows:
        sheet.append(
            [
                r.name,
                registration_phone(r) or "",
                names.get(r.community_id, ""),
                r.address,
                r.work_unit,
                r.party_org,
                r.party_org_contact,
                registration_org_phone(r) or "",
                "、".join([*r.skills, *([r.skills_note] if r.skills_note else [])]),
                "、".join([*r.available_times, *([r.available_note] if r.available_note else [])]),
                status_name(r.status),
                r.created_at,
            ]
        )
    return book.to_bytes()
