"""What staff type into points: a control character or a time outside 2000–2099 is 422
naming the field (API) or the error page (H5), never a 500, and nothing is written; a past
effective date is the service's refusal on the page, not silently "now"."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.models import User
from backend.core.clock import clock
from backend.orgs.models import Community
from backend.points.models import EarningRule, PointsLedgerEntry, Reward
from tests.factories import (
    auth_headers,
    local,
    make_community,
    make_staff,
    make_street_admin,
    make_user,
    session_cookies,
)
from tests.h5.conftest import csrf_token

EXTREME = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:00+00:00", "1970-01-01T00:00:00Z",
           "2100-01-01T00:00:00+08:00"]  # fmt: skip
EXTREME_DATES = ["0001-01-01", "9999-12-31", "1970-01-01", "2100-01-01"]


@pytest.fixture
async def place(db: None) -> tuple[Community, User, User, User]:
    clock.set(local(2026, 3, 10, 10))
    community = await make_community()
    staff = await make_staff(community)
    admin = await make_street_admin(community=community)
    resident = await make_user(community=community)
    return community, staff, admin, resident


def _reward(community: Community, **overrides) -> dict:
    return {"community_id": community.id, "title": "环保袋", "cost": 10, "stock": 5, **overrides}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/points/adjustments", {"delta": 5, "reason": "补录\x00服务"}, "reason"),
        ("/points/adjustments", {"delta": 5, "reason": "补录\u2028服务"}, "reason"),
        ("/rewards", {"title": "环保\x00袋"}, "title"),
        ("/rewards", {"pickup_place": "居委会\x1b"}, "pickup_place"),
        ("/rewards", {"description": "介绍\x7f"}, "description"),
    ],
)
async def test_control_characters_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, place, path: str, body: dict, field: str
) -> None:
    community, staff, _, resident = place
    full = (
        {"user_id": resident.id, **body}
        if path.endswith("adjustments")
        else _reward(community, **body)
    )
    response = await client.post(f"/api/v1{path}", json=full, headers=auth_headers(staff))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert await PointsLedgerEntry.all().count() == 0 and await Reward.all().count() == 0


@pytest.mark.parametrize("field", ["on_sale_from", "on_sale_until"])
@pytest.mark.parametrize("moment", EXTREME)
async def test_reward_times_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, field: str, moment: str
) -> None:
    community, staff, _, _ = place
    headers = auth_headers(staff)
    response = await client.post(
        "/api/v1/rewards", json=_reward(community, **{field: moment}), headers=headers
    )
    assert response.status_code == 422 and field in response.json()["error"]["fields"]
    assert await Reward.all().count() == 0
    created = await client.post("/api/v1/rewards", json=_reward(community), headers=headers)
    patched = await client.patch(
        f"/api/v1/rewards/{created.json()['id']}", json={field: moment}, headers=headers
    )
    assert patched.status_code == 422 and field in patched.json()["error"]["fields"]
    assert getattr(await Reward.get(id=created.json()["id"]), field) is None


@pytest.mark.parametrize("moment", EXTREME)
async def test_rule_start_times_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, moment: str
) -> None:
    _, _, admin, _ = place
    before = await EarningRule.all().count()
    response = await client.post(
        "/api/v1/points/rules",
        json={"event_type": "activity_attended", "points": 5, "effective_from": moment},
        headers=auth_headers(admin),
    )
    assert response.status_code == 422 and "effective_from" in response.json()["error"]["fields"]
    assert await EarningRule.all().count() == before


@pytest.mark.parametrize("field", ["start_date", "end_date"])
@pytest.mark.parametrize("day", EXTREME_DATES)
async def test_export_and_leaderboard_dates_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, field: str, day: str
) -> None:
    community, staff, _, _ = place
    period = {"start_date": "2026-03-01", "end_date": "2026-03-10", field: day}
    query = "&".join(f"{k}={v}" for k, v in period.items())
    response = await client.get(
        f"/api/v1/points/export?community_id={community.id}&{query}", headers=auth_headers(staff)
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {field: "日期须在 2000 年至 2099 年之间"}
    board = await client.get(
        f"/api/v1/points/leaderboard?community_id={community.id}&date={day}",
        headers=auth_headers(staff),
    )
    assert board.status_code == 422 and "date" in board.json()["error"]["fields"]
    client.cookies.update(session_cookies(staff))
    page = await client.get(f"/h5/points/staff/export?community_id={community.id}&{query}")
    assert page.status_code == 422 and "日期须在 2000 年至 2099 年之间" in page.text


async def _token(client: httpx.AsyncClient, user: User, page: str) -> str:
    client.cookies.update(session_cookies(user))
    return csrf_token((await client.get(page)).text)


async def test_the_h5_adjust_form_refuses_a_nul_byte(client: httpx.AsyncClient, place) -> None:
    community, staff, _, resident = place
    token = await _token(client, staff, f"/h5/points/staff/adjust?community_id={community.id}")
    form = {"csrf_token": token, "community_id": str(community.id), "who": str(resident.id)}
    refused = await client.post(
        "/h5/points/staff/adjust", data={**form, "delta": "5", "reason": "补录\x00"}
    )
    assert refused.status_code == 422 and "原因不能包含控制字符" in refused.text
    assert await PointsLedgerEntry.all().count() == 0


@pytest.mark.parametrize("moment", ["0001-01-01T00:00", "9999-12-31T23:59", "2100-01-01T00:00"])
async def test_the_h5_reward_form_refuses_far_times(
    client: httpx.AsyncClient, place, moment: str
) -> None:
    community, staff, _, _ = place
    page = f"/h5/points/staff/rewards/new?community_id={community.id}"
    token = await _token(client, staff, page)
    response = await client.post(
        "/h5/points/staff/rewards",
        data={
            "csrf_token": token,
            "community_id": str(community.id),
            "title": "环保袋",
            "cost": "10",
            "stock": "5",
            "on_sale_from": moment,
        },
    )
    assert response.status_code == 422 and "时间须在 2000 年至 2099 年之间" in response.text
    assert await Reward.all().count() == 0


@pytest.mark.parametrize(
    ("day", "shown"),
    [
        ("2026-03-01", "生效时间不能早于现在"),
        ("0001-01-01", "日期须在 2000 年至 2099 年之间"),
        ("2100-01-01", "日期须在 2000 年至 2099 年之间"),
    ],
)
async def test_the_h5_rule_form_shows_why_a_start_day_is_refused(
    client: httpx.AsyncClient, place, day: str, shown: str
) -> None:
    _, _, admin, _ = place
    before = await EarningRule.all().count()
    token = await _token(client, admin, "/h5/points/staff/rules")
    response = await client.post(
        "/h5/points/staff/rules",
        data={
            "csrf_token": token,
            "event_type": "activity_attended",
            "points": "5",
            "multiplier": "1",
            "effective_date": day,
        },
    )
    assert response.status_code == 422 and shown in response.text
    assert await EarningRule.all().count() == before
