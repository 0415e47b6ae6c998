"""The 双报到 report on a seeded data set: per work unit and member, the page rows, the
Excel file (opened with openpyxl) and its totals; the roster export."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import pytest
from openpyxl import load_workbook

from backend.accounts.models import User
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.errors import Forbidden
from backend.orgs.models import Community
from backend.party import posts, records, registrations, reports, views
from backend.party.schemas import OfflineRecordIn, ReviewIn
from backend.wishes.models import Wish
from tests.factories import local, make_community, make_staff, make_street_admin, make_user
from tests.factories.party import make_member, make_post, registration_in

MARCH = {"start_date": date(2026, 3, 1), "end_date": date(2026, 3, 31)}


@dataclass
class Seeded:
    community: Community
    staff: User
    admin: User
    alice: User
    dave: User


async def _offline(staff, member, community, start, end, post=None) -> None:
    await records.add_offline_record(
        actor=staff,
        data=OfflineRecordIn(
            user_id=member.id,
            community_id=community.id,
            post_id=post.id if post else None,
            task="" if post else "社区巡逻",
            started_at=start,
            ended_at=end,
        ),
    )


async def _attended(community, user, starts_at, status="attended") -> None:
    activity = await Activity.create(
        community=community,
        title="党员志愿活动",
        category="党建",
        starts_at=starts_at,
        ends_at=starts_at,
        booking_opens_at=starts_at,
        booking_closes_at=starts_at,
        cancel_deadline=starts_at,
        capacity=10,
        created_at=starts_at,
        updated_at=starts_at,
    )
    await Booking.create(activity=activity, user=user, status=status, created_at=starts_at)


async def _fulfilled(community, claimer, fulfilled_at, status="closed") -> None:
    poster = await make_user(community=community)
    await Wish.create(
        community=community,
        poster=poster,
        title="帮忙修水管",
        description="厨房水管漏水",
        category="生活帮扶",
        status=status,
        claimer=claimer,
        claimed_at=fulfilled_at,
        fulfilled_at=fulfilled_at,
        created_at=fulfilled_at,
    )


async def seed() -> Seeded:
    """Two work units in community A, one member in community B, a rejection left out."""
    clock.set(local(2026, 2, 1, 9, 0))
    community = await make_community(name="大田社区")
    staff = await make_staff(community)
    other = await make_community(name="新闸社区")
    other_staff = await make_staff(other)
    admin = await make_street_admin()
    tax = {"work_unit": "静安区税务局", "party_org": "税务局机关党委"}
    hospital = {"work_unit": "市第一人民医院", "party_org": "医院党委"}

    alice, _ = await make_member(community, staff, name="张丽", **tax)
    bob, _ = await make_member(community, staff, name="赵强", phone="13600001111", **tax)
    carol = await make_user(community=community)
    await registrations.register(user=carol, data=registration_in(community, name="钱芳", **tax))
    dave, _ = await make_member(community, staff, name="孙伟", **hospital)
    erin, _ = await make_member(other, other_staff, name="周敏", **hospital)
    frank = await make_user(community=community)
    rejected = await registrations.register(
        user=frank, data=registration_in(community, name="吴刚", **tax)
    )
    await registrations.review_registration(
        actor=staff, registration_id=rejected.id, data=ReviewIn(approve=False, reason="信息不实")
    )

    green = await make_post(community, staff, title="绿化养护岗")
    law = await make_post(community, staff, title="法律咨询岗")
    await posts.claim_post(user=alice, post_id=green.id)
    await posts.claim_post(user=dave, post_id=law.id)

    clock.set(local(2026, 4, 5, 9, 0))
    await _offline(staff, alice, community, local(2026, 3, 1, 9), local(2026, 3, 1, 11), green)
    await _offline(staff, alice, community, local(2026, 4, 1, 9), local(2026, 4, 1, 10), green)
    await _offline(staff, bob, community, local(2026, 3, 8, 9), local(2026, 3, 8, 9, 30))
    await _offline(staff, dave, community, local(2026, 3, 15, 8), local(2026, 3, 15, 11), law)
    await _offline(other_staff, erin, other, local(2026, 3, 20, 8), local(2026, 3, 20, 13))

    await _attended(community, alice, local(2026, 3, 10, 12))
    await _attended(community, dave, local(2026, 3, 11, 12))
    await _attended(community, dave, local(2026, 3, 18, 12))
    await _attended(community, dave, local(2026, 4, 2, 12))  # outside the range
    await _attended(community, dave, local(2026, 3, 25, 12), status="no_show")
    await _fulfilled(community, dave, local(2026, 3, 12, 15))
    await _fulfilled(community, dave, local(2026, 3, 13, 15), status="claimed")
    await _fulfilled(community, bob, local(2026, 2, 13, 15))  # outside the range
    return Seeded(community, staff, admin, alice, dave)


async def test_report_rows_per_unit_and_member(db):
    s = await seed()
    report = await reports.party_report(actor=s.staff, **MARCH)

    assert report.community == "大田社区"
    units = {
        u.work_unit: (u.members, u.approved, u.with_post, u.minutes, u.activities, u.wishes)
        for u in report.units
    }
    assert units == {
        "静安区税务局": (3, 2, 1, 150, 1, 0),
        "市第一人民医院": (1, 1, 1, 180, 2, 1),
    }
    members = {m.name: m for m in report.members}
    assert set(members) == {"张丽", "赵强", "钱芳", "孙伟"}  # 吴刚 rejected, 周敏 elsewhere
    assert members["张丽"].posts == ["绿化养护岗"] and members["张丽"].hours == 2.0
    assert members["钱芳"].status == "待审核" and members["钱芳"].minutes == 0
    assert members["赵强"].phone == "136****1111" and members["赵强"].wishes == 0
    assert (members["孙伟"].activities, members["孙伟"].wishes) == (2, 1)
    assert report.total_minutes == 330 and report.total_hours == 5.5


async def test_report_scope_follows_the_viewer(db):
    s = await seed()
    street = await reports.party_report(actor=s.admin, **MARCH)
    assert street.community is None
    assert {m.name for m in street.members} == {"张丽", "赵强", "钱芳", "孙伟", "周敏"}
    assert street.total_minutes == 330 + 300
    hospital = next(u for u in street.units if u.work_unit == "市第一人民医院")
    assert (hospital.members, hospital.minutes) == (2, 480)
    with pytest.raises(Forbidden):
        await reports.party_report(actor=s.alice, **MARCH)
    other_staff = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await reports.party_report(actor=other_staff, community_id=s.community.id, **MARCH)


async def test_report_excel_opens_and_holds_the_totals(db):
    s = await seed()
    content = await reports.report_xlsx(actor=s.staff, **MARCH)
    workbook = load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == ["按单位汇总", "党员明细"]

    units = workbook["按单位汇总"]
    assert "大田社区" in units["A1"].value and "2026-03-01 至 2026-03-31" in units["A1"].value
    assert [c.value for c in units[2]] == reports.UNIT_HEADER
    rows = [[c.value for c in row] for row in units.iter_rows(min_row=3)]
    assert rows[:-1] == [
        ["市第一人民医院", "医院党委", 1, 1, 1, 3.0, 2, 1],
        ["静安区税务局", "税务局机关党委", 3, 2, 1, 2.5, 1, 0],
    ]
    assert rows[-1] == ["合计", None, 4, 3, 2, 5.5, 3, 1]

    members = workbook["党员明细"]
    assert [c.value for c in members[2]] == reports.MEMBER_HEADER
    detail = [[c.value for c in row] for row in members.iter_rows(min_row=3)]
    assert len(detail) == 5
    by_name = {row[0]: row for row in detail[:-1]}
    assert by_name["孙伟"] == [
        "孙伟",
        "139****5678",
        "大田社区",
        "市第一人民医院",
        "医院党委",
        "已报到",
        "法律咨询岗",
        3.0,
        2,
        1,
    ]
    assert by_name["钱芳"][5] == "待审核"
    assert detail[-1][0] == "合计" and detail[-1][7:] == [5.5, 3, 1]
    # Hours in the member sheet add up to the total.
    assert sum(row[7] for row in detail[:-1]) == pytest.approx(5.5)


async def test_roster_export_opens_with_masked_phones(db):
    s = await seed()
    content = await reports.roster_xlsx(
        actor=s.staff, filters=views.RosterFilter(community_id=s.community.id)
    )
    sheet = load_workbook(io.BytesIO(content))["党员名册"]
    assert [c.value for c in sheet[2]] == reports.ROSTER_HEADER
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert [r[0] for r in rows] == ["张丽", "赵强", "钱芳", "孙伟", "吴刚"]
    assert rows[1][1] == "136****1111"
    assert rows[0][7] == "021****0000"
    assert rows[0][8] == "文明劝导、法律咨询" and rows[4][10] == "未通过"
    assert not any("13600001111" in str(v) for r in rows for v in r)
