"""在职党员报到 pages over HTTP: report in, approve, set up a post, claim it, check in and out
with the rotating code, correct a record, the roster and report exports — and who may not."""

from __future__ import annotations

import io
import re

import httpx
from openpyxl import load_workbook

from backend.core import checkin
from backend.core.clock import clock
from backend.party import posts, records
from backend.party.models import PartyRegistration, ServicePost, ServiceRecord
from backend.party.schemas import PostIn
from tests.factories import Neighbourhood, local, make_staff
from tests.h5.conftest import csrf_token, login_as


async def _post(client: httpx.AsyncClient, page: str, action: str, data: dict) -> httpx.Response:
    token = csrf_token((await client.get(page)).text)
    return await client.post(action, data={"csrf_token": token, **data})


REGISTER = {
    "name": "王秀英",
    "phone": "13912345678",
    "work_unit": "静安区税务局",
    "party_org": "税务局机关党委",
    "skills": ["环境绿化", "文明劝导"],
    "available_times": ["周六"],
}


async def test_member_and_staff_pages_end_to_end(client: httpx.AsyncClient, demo: Neighbourhood):
    clock.set(local(2026, 3, 7, 8, 0))
    await make_staff(demo.community, persona="party-staff", nickname="陈社工")
    await login_as(client, "resident")
    hub = await client.get("/h5/party")
    assert hub.status_code == 200 and "我要报到" in hub.text

    bad = await _post(
        client,
        "/h5/party/register",
        "/h5/party/register",
        {**REGISTER, "community_id": demo.community.id, "phone": "123"},
    )
    assert bad.status_code == 422 and "请输入 11 位大陆手机号" in bad.text
    assert 'value="王秀英"' in bad.text  # the form keeps what was typed
    done = await _post(
        client,
        "/h5/party/register",
        "/h5/party/register",
        {**REGISTER, "community_id": demo.community.id},
    )
    assert done.status_code == 303 and done.headers["location"] == "/h5/party?done=registered"
    hub = await client.get("/h5/party")
    assert "待审核" in hub.text and "报到信息已提交" not in hub.text
    assert "报到信息已提交" in (await client.get("/h5/party?done=registered")).text
    assert (await client.get("/h5/party/staff")).status_code == 403

    await login_as(client, "party-staff")
    queue = await client.get("/h5/party/staff/queue")
    assert "王秀英" in queue.text and "139****5678" in queue.text
    assert "13912345678" not in queue.text
    registration = await PartyRegistration.get(name="王秀英")
    approved = await _post(
        client,
        "/h5/party/staff/queue",
        f"/h5/party/staff/registrations/{registration.id}/review",
        {"decision": "approve"},
    )
    assert approved.status_code == 303
    created = await _post(
        client,
        "/h5/party/staff/posts",
        "/h5/party/staff/posts",
        {
            "community_id": demo.community.id,
            "term": 2026,
            "title": "绿化养护岗",
            "kind": "post",
            "capacity": 3,
            "skills": ["环境绿化"],
        },
    )
    assert created.status_code == 303
    post = await ServicePost.get(title="绿化养护岗")
    assert created.headers["location"] == f"/h5/party/staff/posts/{post.id}?done=post_created"
    detail = await client.get(created.headers["location"])
    assert "岗位已设立" in detail.text and "王秀英" in detail.text  # in the assign list

    await login_as(client, "resident")
    posts = await client.get("/h5/party/posts")
    assert "为您推荐" in posts.text and "认领「绿化养护岗」" in posts.text
    claimed = await _post(client, "/h5/party/posts", f"/h5/party/posts/{post.id}/claim", {})
    assert claimed.headers["location"] == "/h5/party/posts?done=claimed"
    assert "退出岗位" in (await client.get("/h5/party/posts")).text

    await login_as(client, "party-staff")
    qr = await client.get(f"/h5/party/staff/posts/{post.id}/qr")
    assert qr.status_code == 200 and "<svg" in qr.text
    assert 1 <= int(qr.headers["refresh"]) <= 30
    code = re.search(r'id="code">(\d{6})<', qr.text).group(1)

    await login_as(client, "resident")
    page = await client.get(f"/h5/party/checkin?post={post.id}&code={code}")
    assert f'value="{code}"' in page.text and "签到：绿化养护岗" in page.text
    wrong = await _post(
        client,
        f"/h5/party/checkin?post={post.id}",
        "/h5/party/checkin",
        {"post_id": post.id, "code": "000000", "action": "in"},
    )
    assert wrong.status_code == 409 and "签到码不正确" in wrong.text
    checked_in = await _post(
        client,
        f"/h5/party/checkin?post={post.id}",
        "/h5/party/checkin",
        {"post_id": post.id, "code": code, "action": "in"},
    )
    assert checked_in.headers["location"].endswith("done=checked_in")
    assert "签退：绿化养护岗" in (await client.get(checked_in.headers["location"])).text
    clock.set(local(2026, 3, 7, 9, 30))
    fresh = checkin.current_code(subject=records.post_subject(post.id))[0]
    out = await _post(
        client,
        f"/h5/party/checkin?post={post.id}",
        "/h5/party/checkin",
        {"post_id": post.id, "code": fresh, "action": "out"},
    )
    assert out.headers["location"] == "/h5/party/service?done=checked_out"
    mine = await client.get(out.headers["location"])
    assert "1.5 小时" in mine.text and "90 分钟" in mine.text and "+15 积分" in mine.text

    await login_as(client, "party-staff")
    record = await ServiceRecord.get(user_id=registration.user_id)
    corrected = await _post(
        client,
        f"/h5/party/staff/records/{record.id}",
        f"/h5/party/staff/records/{record.id}/correct",
        {"started_at": "2026-03-07T08:00", "ended_at": "2026-03-07T09:00", "reason": "提前离岗"},
    )
    assert corrected.status_code == 303
    shown = await client.get(corrected.headers["location"])
    assert "60 分钟" in shown.text and "提前离岗" in shown.text and "90 → 60" in shown.text
    no_reason = await _post(
        client,
        f"/h5/party/staff/records/{record.id}",
        f"/h5/party/staff/records/{record.id}/correct",
        {"started_at": "2026-03-07T08:00", "ended_at": "2026-03-07T09:00", "reason": ""},
    )
    assert no_reason.status_code == 422 and "请填写更正原因" in no_reason.text

    staff_posts = await client.get("/h5/party/staff/posts")
    assert "本年度服务 1.0 小时" in staff_posts.text

    roster = await client.get("/h5/party/staff/roster?q=税务")
    assert "王秀英" in roster.text
    xlsx = await client.get(f"/h5/party/staff/roster.xlsx?community_id={demo.community.id}")
    assert load_workbook(io.BytesIO(xlsx.content))["党员名册"]["A3"].value == "王秀英"
    report = await client.get("/h5/party/staff/report?start_date=2026-03-01&end_date=2026-03-31")
    assert "静安区税务局" in report.text and 'id="report-total">1.0 小时' in report.text
    report_xlsx = await client.get(
        "/h5/party/staff/report.xlsx?start_date=2026-03-01&end_date=2026-03-31"
    )
    units = load_workbook(io.BytesIO(report_xlsx.content))["按单位汇总"]
    assert [c.value for c in units[3]][:6] == ["静安区税务局", "税务局机关党委", 1, 1, 1, 1.0]


async def test_staff_pages_refuse_residents_and_other_communities(
    client: httpx.AsyncClient, demo: Neighbourhood
):
    other_staff = await make_staff(demo.other_community, persona="other-staff")
    post = await posts.create_post(
        actor=await make_staff(demo.community),
        data=PostIn(community_id=demo.community.id, title="六乱监督岗", term=2026, capacity=2),
    )
    await login_as(client, "resident")
    for path in (
        "/h5/party/staff",
        "/h5/party/staff/roster",
        "/h5/party/staff/report",
        f"/h5/party/staff/posts/{post.id}/qr",
    ):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "工作人员" in response.text
    await login_as(client, other_staff.persona)
    assert (await client.get(f"/h5/party/staff/posts/{post.id}/qr")).status_code == 403
    # Their own community only, even when asked for another.
    roster = await client.get(f"/h5/party/staff/roster?community_id={demo.community.id}")
    assert roster.status_code == 200 and demo.other_community.name in roster.text
    logged_out = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with logged_out:
        response = await logged_out.get("/h5/party")
        assert response.status_code == 302 and "/h5/login" in response.headers["location"]
