"""The party API end to end: report in, approve, post, claim, check in and out, records,
hours, the report — and who gets which error."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook

from backend.core import checkin
from backend.core.clock import clock
from backend.party import posts, records
from backend.party.schemas import PostIn
from tests.factories import auth_headers, local, make_community, make_staff, make_user

REGISTRATION = {
    "name": "李建国",
    "phone": "139 1234 5678",
    "work_unit": "静安区税务局",
    "party_org": "静安区税务局机关党委",
    "party_org_contact": "王书记",
    "party_org_phone": "021-62170000",
    "skills": ["文明劝导", "环境绿化"],
    "available_times": ["周六", "周日"],
}


async def test_the_whole_flow_over_http(client: httpx.AsyncClient):
    clock.set(local(2026, 3, 7, 8, 0))
    community = await make_community()
    staff = await make_staff(community)
    member = await make_user(community=community)
    staff_h, member_h = auth_headers(staff), auth_headers(member)

    skills = (await client.get("/api/v1/party/skills")).json()
    assert "环境绿化" in skills["skills"] and "周六" in skills["time_slots"]

    created = await client.post(
        "/api/v1/party/registrations",
        json={**REGISTRATION, "community_id": community.id},
        headers=member_h,
    )
    assert created.status_code == 201, created.text
    registration = created.json()
    assert registration["status"] == "pending" and registration["status_name"] == "待审核"
    assert registration["phone"] == "139****5678"
    assert registration["party_org_phone"] == "021****0000"
    again = await client.post(
        "/api/v1/party/registrations",
        json={**REGISTRATION, "community_id": community.id},
        headers=member_h,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_registered"

    queue = await client.get(
        "/api/v1/party/registrations",
        params={"status": "pending", "community_id": community.id},
        headers=staff_h,
    )
    assert [r["id"] for r in queue.json()["items"]] == [registration["id"]]
    approved = await client.post(
        f"/api/v1/party/registrations/{registration['id']}/review",
        json={"approve": True},
        headers=staff_h,
    )
    assert approved.json()["status"] == "approved"
    me = (await client.get("/api/v1/me", headers=member_h)).json()
    assert "party_member" in me["roles"]

    post = await client.post(
        "/api/v1/posts",
        json={
            "community_id": community.id,
            "title": "绿化养护岗",
            "description": "每周六上午养护小区绿地",
            "capacity": 2,
            "term": 2026,
            "skills": ["环境绿化"],
        },
        headers=staff_h,
    )
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    listed = await client.get(
        "/api/v1/posts", params={"community_id": community.id}, headers=member_h
    )
    item = listed.json()["items"][0]
    assert item["suggested"] and item["matched_skills"] == ["环境绿化"]
    assert item["seats_left"] == 2

    claimed = await client.post(
        f"/api/v1/posts/{post_id}/claim", headers={**member_h, "Idempotency-Key": "claim-1"}
    )
    assert claimed.status_code == 200 and claimed.json()["status"] == "active"
    replay = await client.post(
        f"/api/v1/posts/{post_id}/claim", headers={**member_h, "Idempotency-Key": "claim-1"}
    )
    assert replay.json() == claimed.json() and replay.headers["idempotent-replayed"] == "true"
    twice = await client.post(f"/api/v1/posts/{post_id}/claim", headers=member_h)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_has_post"
    mine = (await client.get("/api/v1/me/party/posts", headers=member_h)).json()
    assert [a["post_id"] for a in mine["items"]] == [post_id]

    code = await client.post(f"/api/v1/posts/{post_id}/checkin-code", headers=staff_h)
    assert code.status_code == 200 and len(code.json()["code"]) == 6
    wrong = await client.post(
        f"/api/v1/posts/{post_id}/checkin", json={"code": "123"}, headers=member_h
    )
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "checkin_code_invalid"
    started = await client.post(
        f"/api/v1/posts/{post_id}/checkin", json={"code": code.json()["code"]}, headers=member_h
    )
    assert started.status_code == 201 and started.json()["status"] == "open"
    clock.set(local(2026, 3, 7, 9, 30))
    fresh = checkin.current_code(subject=records.post_subject(post_id))[0]
    ended = await client.post(
        f"/api/v1/posts/{post_id}/checkout", json={"code": fresh}, headers=member_h
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["minutes"] == 90 and ended.json()["points"] == 15

    service_out = (await client.get("/api/v1/me/party/service", headers=member_h)).json()
    assert service_out["total_hours"] == 1.5 and service_out["open_record"] is None
    points = (await client.get("/api/v1/me/points", headers=member_h)).json()
    # 50 for the approved report-in (the default rule), 15 for 1.5 hours at 10 an hour.
    assert points["balance"] == 50 + 15

    record_id = ended.json()["id"]
    corrected = await client.patch(
        f"/api/v1/party/service-records/{record_id}",
        json={
            "started_at": "2026-03-07T08:00:00+08:00",
            "ended_at": "2026-03-07T09:00:00+08:00",
            "reason": "提前离岗",
        },
        headers=staff_h,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["minutes"] == 60
    assert [a["action"] for a in corrected.json()["audits"]] == ["corrected"]
    detail = await client.get(f"/api/v1/party/service-records/{record_id}", headers=member_h)
    assert detail.json()["audits"][0]["reason"] == "提前离岗"

    offline = await client.post(
        "/api/v1/party/service-records",
        json={
            "user_id": member.id,
            "community_id": community.id,
            "task": "防汛值守",
            "started_at": "2026-03-06T19:00:00+08:00",
            "ended_at": "2026-03-06T21:00:00+08:00",
            "note": "线下签到表",
        },
        headers=staff_h,
    )
    assert offline.status_code == 201, offline.text
    assert offline.json()["source"] == "offline"
    assert offline.json()["audits"][0]["action"] == "created"

    hours = await client.get(
        "/api/v1/party/hours",
        params={"group_by": "member", "community_id": community.id, "start_date": "2026-03-01"},
        headers=staff_h,
    )
    assert hours.json()["items"] == [
        {"key": member.id, "name": "李建国", "minutes": 180, "hours": 3.0}
    ]
    report = await client.get(
        "/api/v1/party/report",
        params={"community_id": community.id, "start_date": "2026-03-01", "end_date": "2026-03-31"},
        headers=staff_h,
    )
    assert report.json()["total_hours"] == 3.0
    assert report.json()["units"][0]["work_unit"] == "静安区税务局"
    xlsx = await client.get(
        "/api/v1/party/report.xlsx",
        params={"community_id": community.id, "start_date": "2026-03-01"},
        headers=staff_h,
    )
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == ["按单位汇总", "党员明细"]
    roster = await client.get(
        "/api/v1/party/registrations/export",
        params={"community_id": community.id},
        headers=staff_h,
    )
    assert load_workbook(io.BytesIO(roster.content))["党员名册"]["A3"].value == "李建国"

    released = await client.post(f"/api/v1/posts/{post_id}/release", headers=member_h)
    assert released.json()["status"] == "released"
    withdrawn = await client.delete("/api/v1/party/registrations/mine", headers=member_h)
    assert withdrawn.json()["status"] == "ended"
    me = (await client.get("/api/v1/me", headers=member_h)).json()
    assert "party_member" not in me["roles"]


async def test_who_may_do_what(client: httpx.AsyncClient):
    clock.set(local(2026, 3, 7, 8, 0))
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)
    other_staff = await make_staff(await make_community())
    post = await posts.create_post(
        actor=staff,
        data=PostIn(community_id=community.id, title="六乱监督岗", term=2026, capacity=3),
    )

    assert (await client.post("/api/v1/party/registrations", json={})).status_code == 401
    assert (await client.get("/api/v1/party/registrations/mine")).status_code == 401
    assert (await client.post(f"/api/v1/posts/{post.id}/claim")).status_code == 401
    # Public read of posts needs no login.
    assert (await client.get("/api/v1/posts", params={"term": 2026})).status_code == 200

    resident_h = auth_headers(resident)
    for method, path, body in (
        ("GET", "/api/v1/party/registrations", None),
        ("GET", "/api/v1/party/registrations/export", None),
        ("POST", "/api/v1/posts", {"community_id": community.id, "title": "x", "term": 2026}),
        ("POST", f"/api/v1/posts/{post.id}/checkin-code", None),
        ("GET", "/api/v1/party/report", None),
        ("GET", "/api/v1/party/hours", None),
    ):
        response = await client.request(method, path, json=body, headers=resident_h)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"

    claim = await client.post(f"/api/v1/posts/{post.id}/claim", headers=resident_h)
    assert claim.status_code == 403 and claim.json()["error"]["code"] == "not_party_member"

    registered = await client.post(
        "/api/v1/party/registrations",
        json={**REGISTRATION, "community_id": community.id},
        headers=resident_h,
    )
    registration_id = registered.json()["id"]
    other_h = auth_headers(other_staff)
    review = await client.post(
        f"/api/v1/party/registrations/{registration_id}/review",
        json={"approve": True},
        headers=other_h,
    )
    assert review.status_code == 404
    created = await client.post(
        "/api/v1/posts",
        json={"community_id": community.id, "title": "绿化岗", "term": 2026},
        headers=other_h,
    )
    assert created.status_code == 403
    code = await client.post(f"/api/v1/posts/{post.id}/checkin-code", headers=other_h)
    assert code.status_code == 403
    reject = await client.post(
        f"/api/v1/party/registrations/{registration_id}/review",
        json={"approve": False},
        headers=auth_headers(staff),
    )
    assert reject.status_code == 422 and "reason" in reject.json()["error"]["fields"]


async def test_bad_input_is_a_clear_error(client: httpx.AsyncClient):
    community = await make_community()
    user = await make_user(community=community)
    headers = auth_headers(user)
    bad = await client.post(
        "/api/v1/party/registrations",
        json={
            **REGISTRATION,
            "community_id": community.id,
            "phone": "12345678901",
            "skills": ["x"],
        },
        headers=headers,
    )
    assert bad.status_code == 422
    assert set(bad.json()["error"]["fields"]) == {"phone", "skills"}
    for path in ("/api/v1/posts/0", "/api/v1/posts/99999999999999999999", "/api/v1/posts/abc"):
        assert (await client.get(path)).status_code == 422, path
    assert (await client.get("/api/v1/posts/987654")).status_code == 404
    unknown = await client.get("/api/v1/party/registrations/123456", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    missing = await client.get("/api/v1/party/registrations/mine", headers=headers)
    assert missing.status_code == 404
    naive = await client.post(
        "/api/v1/party/service-records",
        json={
            "user_id": user.id,
            "community_id": community.id,
            "task": "x",
            "started_at": "2026-03-06T19:00:00",
            "ended_at": "2026-03-06T21:00:00",
        },
        headers=headers,
    )
    assert naive.status_code in (403, 422)


async def test_openapi_documents_the_party_routes(client: httpx.AsyncClient):
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/v1/party/registrations",
        "/api/v1/party/registrations/{registration_id}/review",
        "/api/v1/posts",
        "/api/v1/posts/{post_id}/claim",
        "/api/v1/posts/{post_id}/checkin",
        "/api/v1/party/report.xlsx",
    ):
        assert path in paths, path
    claim = paths["/api/v1/posts/{post_id}/claim"]["post"]["responses"]
    assert {"401", "403", "409"} <= set(claim)
