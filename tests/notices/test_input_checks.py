"""What staff type into a notice: a control character or a publish time outside 2000–2099
is 422 naming the field (API) or the form's error (H5), never a 500, and nothing is
written or queued."""

from __future__ import annotations

import json

import httpx
import pytest

from backend.accounts.models import User
from backend.core.models import OutboxMessage
from backend.notices.models import Notice
from backend.orgs.models import Community
from tests.factories import auth_headers, make_community, make_staff, session_cookies
from tests.h5.conftest import csrf_token

EXTREME = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:00+00:00", "1970-01-01T00:00:00Z",
           "2100-01-01T00:00:00+08:00", "0001-01-01T00:00:00"]  # fmt: skip


@pytest.fixture
async def place(db: None) -> tuple[Community, User]:
    community = await make_community()
    return community, await make_staff(community)


async def _nothing_written() -> None:
    assert await Notice.all().count() == 0
    assert await OutboxMessage.all().count() == 0


@pytest.mark.parametrize("path", ["/notices", "/notices/preview"])
@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "停水\x00通知"), ("title", "两行\n标题"), ("body", "正文\x1b"),
     ("body", "正文\ud800"), ("link", "/h5/\x00")],
)  # fmt: skip
async def test_control_characters_in_a_notice_are_refused(
    client: httpx.AsyncClient, place, path: str, field: str, value: str
) -> None:
    community, staff = place
    body = {"community_id": community.id, "title": "停水通知", "body": "明天停水", field: value}
    # As JSON escapes, the way a client can send a lone surrogate at all.
    response = await client.post(
        f"/api/v1{path}",
        content=json.dumps(body),
        headers={**auth_headers(staff), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    await _nothing_written()


@pytest.mark.parametrize("path", ["/notices", "/notices/preview"])
@pytest.mark.parametrize("moment", EXTREME)
async def test_publish_times_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, path: str, moment: str
) -> None:
    community, staff = place
    body = {"community_id": community.id, "title": "停水通知", "body": "明天停水"}
    response = await client.post(
        f"/api/v1{path}", json={**body, "publish_at": moment}, headers=auth_headers(staff)
    )
    assert response.status_code == 422 and "publish_at" in response.json()["error"]["fields"]
    await _nothing_written()


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("title", "停水\x00通知", "标题不能包含控制字符"),
        ("body", "正文\x07", "正文不能包含控制字符"),
        ("publish_at", "0001-01-01T00:00", "时间须在 2000 年至 2099 年之间"),
        ("publish_at", "9999-12-31T23:59", "时间须在 2000 年至 2099 年之间"),
        ("publish_at", "2100-01-01T00:00", "时间须在 2000 年至 2099 年之间"),
    ],
)
async def test_the_h5_compose_form_refuses_and_writes_nothing(
    client: httpx.AsyncClient, place, field: str, value: str, shown: str
) -> None:
    community, staff = place
    client.cookies.update(session_cookies(staff))
    token = csrf_token((await client.get("/h5/notices/new")).text)
    form = {"csrf_token": token, "community_id": str(community.id), "title": "停水通知"}
    form.update(body="明天停水\r\n请提前储水", audience="all")
    for action in ("/h5/notices/preview", "/h5/notices"):
        response = await client.post(action, data={**form, field: value})
        assert response.status_code == 422 and shown in response.text
    await _nothing_written()
    # A textarea's CR LF line ends are no control characters: the same form goes out.
    done = await client.post("/h5/notices", data=form)
    assert done.status_code == 303
    assert (await Notice.get()).body == "明天停水\n请提前储水"
