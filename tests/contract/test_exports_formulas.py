"""Every staff export, produced through the real API and the H5 route, after residents and
staff typed formula-looking text into everything they can type: opened with openpyxl, no
cell is a formula, every typed string is a plain text cell, and times are date cells."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.xlsx import MEDIA_TYPE
from backend.orgs.models import Community
from tests.factories import auth_headers, make_community, make_staff, make_user, session_cookies
from tests.factories.activities import activity_fields, as_json

FORMULAS = ["=1+1", "@SUM(A1)", '=HYPERLINK("http://x","y")', "+1", "-1+1"]
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


@dataclass
class Typed:
    community: Community
    staff: User
    residents: list[User]


async def _ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def typed(client: httpx.AsyncClient) -> Typed:
    """A community where every resident's nickname is a formula (set through PATCH /me)."""
    clock.set(NOW)
    community = await make_community()
    staff = await make_staff(community, nickname="陈社工")
    residents = []
    for index, text in enumerate(FORMULAS):
        user = await make_user(community=community, phone=f"1391234{index:04d}")
        await _ok(
            await client.patch("/api/v1/me", json={"nickname": text}, headers=auth_headers(user))
        )
        residents.append(user)
    return Typed(community, staff, residents)


def _cells(book: Workbook):
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            yield from row


def _open(response: httpx.Response) -> Workbook:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return load_workbook(io.BytesIO(response.content))


def assert_inert(book: Workbook, *, typed: list[str]) -> None:
    """No formula anywhere, every string a text cell, and what people typed is there as
    they typed it."""
    cells = list(_cells(book))
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    strings = [c for c in cells if isinstance(c.value, str)]
    assert all(c.data_type == "s" for c in strings)
    values = {c.value for c in strings}
    for text in typed:
        assert text in values, text


def column(book: Workbook, sheet: str, header: str, *, header_row: int) -> list:
    rows = list(book[sheet].iter_rows(min_row=header_row))
    index = [c.value for c in rows[0]].index(header)
    return [row[index] for row in rows[1:] if row[index].value is not None]


async def _both(client: httpx.AsyncClient, staff: User, api: str, page: str) -> list[Workbook]:
    """The same export from the API (bearer token) and the H5 route (session cookie)."""
    from_api = _open(await client.get(api, headers=auth_headers(staff)))
    client.cookies.update(session_cookies(staff))
    try:
        from_page = _open(await client.get(page))
    finally:
        client.cookies.clear()
    return [from_api, from_page]


async def test_the_activity_bookings_export(client: httpx.AsyncClient, typed: Typed) -> None:
    body = activity_fields(
        typed.community,
        title=FORMULAS[0],
        location=FORMULAS[2],
        description=FORMULAS[1],
        capacity=3,
        waitlist_capacity=5,
    )
    created = await _ok(
        await client.post(
            "/api/v1/activities", json=as_json(body), headers=auth_headers(typed.staff)
        ),
        201,
    )
    for user in typed.residents:
        path = f"/api/v1/activities/{created['id']}/bookings"
        await _ok(await client.post(path, headers=auth_headers(user)), 201)
    books = await _both(
        client,
        typed.staff,
        f"/api/v1/activities/{created['id']}/bookings.xlsx",
        f"/h5/activities/{created['id']}/export.xlsx",
    )
    for book in books:
        assert_inert(book, typed=FORMULAS)
        booked = column(book, "报名与签到", "报名时间", header_row=2)
        assert len(booked) == len(FORMULAS) and all(c.is_date for c in booked)
        # Masked: the file travels further than the page.
        phones = [c.value for c in column(book, "报名与签到", "手机号", header_row=2)]
        assert phones == [f"139****{index:04d}" for index in range(len(FORMULAS))]


async def test_the_party_roster_and_report(client: httpx.AsyncClient, typed: Typed) -> None:
    for index, (user, text) in enumerate(zip(typed.residents, FORMULAS, strict=True)):
        registration = await _ok(
            await client.post(
                "/api/v1/party/registrations",
                json={
                    "name": text,
                    "phone": f"1381234{index:04d}",
                    "work_unit": text,
                    "party_org": text,
                    "party_org_contact": text,
                    "address": text,
                    "skills_note": text,
                    "available_note": text,
                    "community_id": typed.community.id,
                },
                headers=auth_headers(user),
            ),
            201,
        )
        await _ok(
            await client.post(
                f"/api/v1/party/registrations/{registration['id']}/review",
                json={"approve": True},
                headers=auth_headers(typed.staff),
            )
        )
    roster = await _both(
        client,
        typed.staff,
        f"/api/v1/party/registrations/export?community_id={typed.community.id}",
        f"/h5/party/staff/roster.xlsx?community_id={typed.community.id}",
    )
    for book in roster:
        assert_inert(book, typed=FORMULAS)
        names = [c.value for c in column(book, "党员名册", "姓名", header_row=2)]
        assert sorted(names) == sorted(FORMULAS)
        submitted = column(book, "党员名册", "提交时间", header_row=2)
        assert len(submitted) == len(FORMULAS) and all(c.is_date for c in submitted)
        phones = {c.value for c in column(book, "党员名册", "手机号", header_row=2)}
        assert phones == {f"138****{index:04d}" for index in range(len(FORMULAS))}
    period = "start_date=2026-01-01&end_date=2026-03-10"
    report = await _both(
        client,
        typed.staff,
        f"/api/v1/party/report.xlsx?community_id={typed.community.id}&{period}",
        f"/h5/party/staff/report.xlsx?community_id={typed.community.id}&{period}",
    )
    for book in report:
        assert_inert(book, typed=FORMULAS)
        units = [c.value for c in column(book, "按单位汇总", "工作单位", header_row=2)]
        assert sorted(units[:-1]) == sorted(FORMULAS) and units[-1] == "合计"
        total = list(book["党员明细"].iter_rows())[-1]
        assert total[0].value == "合计" and total[0].font.b


async def test_the_points_export(client: httpx.AsyncClient, typed: Typed) -> None:
    staff = auth_headers(typed.staff)
    for user, text in zip(typed.residents, FORMULAS, strict=True):
        await _ok(
            await client.post(
                "/api/v1/points/adjustments",
                json={"user_id": user.id, "delta": 50, "reason": text},
                headers=staff,
            ),
            201,
        )
    reward = await _ok(
        await client.post(
            "/api/v1/rewards",
            json={
                "community_id": typed.community.id,
                "title": FORMULAS[2],
                "cost": 10,
                "stock": 10,
                "pickup_place": FORMULAS[1],
                "description": FORMULAS[0],
            },
            headers=staff,
        ),
        201,
    )
    redeemed = await client.post(
        f"/api/v1/rewards/{reward['id']}/redeem", headers=auth_headers(typed.residents[0])
    )
    assert redeemed.status_code == 201, redeemed.text
    today = (NOW + timedelta(hours=8)).date()
    period = f"start_date={today - timedelta(days=1)}&end_date={today}"
    books = await _both(
        client,
        typed.staff,
        f"/api/v1/points/export?community_id={typed.community.id}&{period}",
        f"/h5/points/staff/export?community_id={typed.community.id}&{period}",
    )
    for book in books:
        assert_inert(book, typed=FORMULAS)
        reasons = [c.value for c in column(book, "明细", "事由", header_row=1)]
        assert FORMULAS[3] in reasons and f"兑换「{FORMULAS[2]}」" in reasons
        times = column(book, "明细", "时间", header_row=1)
        assert len(times) == len(FORMULAS) + 1 and all(c.is_date for c in times)
        summary = book["汇总"]
        assert summary["B2"].is_date and summary["B2"].value == datetime(2026, 3, 9)
        issued = next(r for r in summary.iter_rows() if r[0].value == "合计发放")
        assert issued[1].value == 50 * len(FORMULAS) and issued[0].font.b


async def test_the_wishes_export(client: httpx.AsyncClient, typed: Typed) -> None:
    for user, text in zip(typed.residents, FORMULAS, strict=True):
        wish = await _ok(
            await client.post(
                "/api/v1/wishes",
                json={
                    "community_id": typed.community.id,
                    "title": text,
                    "description": f"{text}，想请邻居帮忙",
                    "category": "生活帮扶",
                    "needed_by": "2026-04-01",
                    "address": text,
                },
                headers=auth_headers(user),
            ),
            201,
        )
        await _ok(
            await client.post(
                f"/api/v1/wishes/{wish['id']}/review",
                json={"approve": True},
                headers=auth_headers(typed.staff),
            )
        )
    books = await _both(
        client,
        typed.staff,
        f"/api/v1/staff/wishes/export.xlsx?community_id={typed.community.id}",
        "/h5/wishes/export.xlsx",
    )
    for book in books:
        assert_inert(book, typed=FORMULAS)
        needed = column(book, "微心愿", "希望完成日期", header_row=1)
        assert [c.value for c in needed] == [datetime(2026, 4, 1)] * len(FORMULAS)
        assert all(c.is_date for c in needed)
        assert all(c.is_date for c in column(book, "微心愿", "发布时间", header_row=1))
