"""Text and times staff type into an activity: a control character or a time outside
2000–2099 is 422 naming the field (API) or the error page (H5), and nothing is written."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from backend.activities.models import Activity
from tests.factories import auth_headers, make_community, make_staff, session_cookies
from tests.factories.activities import activity_fields, as_json, freeze, make_activity
from tests.h5.conftest import csrf_token

EXTREME = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:00+00:00", "1970-01-01T00:00:00Z",
           "2100-01-01T00:00:00+08:00"]  # fmt: skip
TIMES = ["starts_at", "ends_at", "booking_opens_at", "booking_closes_at", "cancel_deadline"]


@pytest.fixture
async def staff(db: None):
    freeze()
    community = await make_community()
    return community, await make_staff(community)


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "舞韵\x00瑜伽"), ("location", "活动室\x1b"), ("description", "介绍\x7f"),
     ("title", "两行\n标题")],
)  # fmt: skip
async def test_control_characters_in_an_activity_are_refused(
    client: httpx.AsyncClient, staff, field: str, value: str
) -> None:
    community, user = staff
    body = as_json(activity_fields(community, **{field: value}))
    response = await client.post("/api/v1/activities", json=body, headers=auth_headers(user))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert await Activity.all().count() == 0


@pytest.mark.parametrize("field", TIMES)
@pytest.mark.parametrize("moment", EXTREME)
async def test_times_outside_the_window_are_refused_on_create_and_edit(
    client: httpx.AsyncClient, staff, field: str, moment: str
) -> None:
    community, user = staff
    body = {**as_json(activity_fields(community)), field: moment}
    response = await client.post("/api/v1/activities", json=body, headers=auth_headers(user))
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]
    assert await Activity.all().count() == 0
    activity = await make_activity(community, staff=user)
    patched = await client.patch(
        f"/api/v1/activities/{activity.id}", json={field: moment}, headers=auth_headers(user)
    )
    assert patched.status_code == 422 and field in patched.json()["error"]["fields"]
    assert (await Activity.get(id=activity.id)).revision == activity.revision


async def test_a_cancel_reason_with_a_nul_byte_is_refused(client: httpx.AsyncClient, staff) -> None:
    community, user = staff
    activity = await make_activity(community, staff=user)
    response = await client.post(
        f"/api/v1/activities/{activity.id}/cancel",
        json={"reason": "下雨\x00"},
        headers=auth_headers(user),
    )
    assert response.status_code == 422 and "reason" in response.json()["error"]["fields"]
    assert (await Activity.get(id=activity.id)).status == "published"


def _form(community_id: int, **overrides: str) -> dict[str, str]:
    start = datetime(2025, 6, 20, 12, 0)
    values = {
        "community_id": str(community_id),
        "title": "舞韵瑜伽",
        "category": "午间一小时",
        "description": "",
        "location": "活动室",
        "starts_at": start.isoformat(timespec="minutes"),
        "ends_at": (start + timedelta(hours=1)).isoformat(timespec="minutes"),
        "booking_opens_at": "2025-06-11T09:00",
        "booking_closes_at": "2025-06-20T10:00",
        "cancel_deadline": "2025-06-20T08:00",
        "capacity": "10",
        "waitlist_capacity": "0",
        "points": "0",
        "mode": "first_come",
        "audience": "resident",
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("title", "舞韵\x00瑜伽", "标题不能包含控制字符"),
        ("description", "第一行\x08", "介绍不能包含控制字符"),
        ("starts_at", "0001-01-01T00:00", "时间须在 2000 年至 2099 年之间"),
        ("cancel_deadline", "9999-12-31T23:59", "时间须在 2000 年至 2099 年之间"),
        ("booking_opens_at", "1970-01-01T00:00", "时间须在 2000 年至 2099 年之间"),
        ("ends_at", "2100-01-01T00:00", "时间须在 2000 年至 2099 年之间"),
    ],
)
async def test_the_h5_form_shows_the_error_and_writes_nothing(
    client: httpx.AsyncClient, staff, field: str, value: str, shown: str
) -> None:
    community, user = staff
    client.cookies.update(session_cookies(user))
    assert (await client.get("/h5/activities/new")).status_code == 200
    token = csrf_token((await client.get("/h5/")).text)
    response = await client.post(
        "/h5/activities/new", data={"csrf_token": token, **_form(community.id, **{field: value})}
    )
    assert response.status_code == 422
    assert shown in response.text
    assert await Activity.all().count() == 0
    # The same form with sane values goes through, so the refusal was the field's.
    done = await client.post(
        "/h5/activities/new", data={"csrf_token": token, **_form(community.id)}
    )
    assert done.status_code == 303 and await Activity.all().count() == 1
