"""Service-post check-in: only within the post's service hours (staff set them, 07:00–21:00
by default), and locked for one person after five wrong codes in a 15-minute window."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from backend.core import checkin
from backend.core.clock import clock
from backend.core.errors import DomainError, Invalid
from backend.core.models import UsageCounter
from backend.party import posts, records, views
from backend.party.models import ServicePost, ServiceRecord
from backend.party.schemas import OfflineRecordIn, PostPatch
from tests.factories import auth_headers, local, make_community, make_staff, session_cookies
from tests.factories.party import make_member, make_post
from tests.h5.conftest import csrf_token

LIMIT = 5  # the default LINLI_CHECKIN_MAX_FAILURES


def code_for(post: ServicePost) -> str:
    return checkin.current_code(subject=records.post_subject(post.id))[0]


def wrong_for(post: ServicePost) -> str:
    return "000000" if code_for(post) != "000000" else "111111"


async def _refused(coro) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await coro
    return caught.value


async def _setup(**post_overrides):
    clock.set(local(2026, 3, 7, 9, 0))
    community = await make_community()
    staff = await make_staff(community)
    member, _ = await make_member(community, staff)
    post = await make_post(community, staff, **post_overrides)
    if post.kind == "post":
        await posts.claim_post(user=member, post_id=post.id)
    return community, staff, member, post


# --- service hours ---


async def test_qr_check_in_only_within_the_default_hours(db):
    _, _, member, post = await _setup()
    assert (post.open_from, post.open_until) == (7 * 60, 21 * 60)

    clock.set(local(2026, 3, 7, 6, 59, 59))
    early = await _refused(records.check_in(user=member, post_id=post.id, code=code_for(post)))
    assert (early.status_code, early.code) == (409, "post_off_hours")
    assert "本岗位服务时间为 07:00–21:00" in early.message
    clock.set(local(2026, 3, 7, 21, 0))
    late = await _refused(records.check_in(user=member, post_id=post.id, code=code_for(post)))
    assert late.code == "post_off_hours"
    assert not await ServiceRecord.exists(user_id=member.id)

    clock.set(local(2026, 3, 7, 20, 59))
    record = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    assert record.status == "open"
    # Checking out is not bound to the hours: the service began within them.
    clock.set(local(2026, 3, 7, 21, 30))
    closed = await records.check_out(user=member, post_id=post.id, code=code_for(post))
    assert (closed.status, closed.minutes) == ("closed", 31)


async def test_hours_staff_set_decide_and_offline_records_are_not_bound(db):
    community, staff, member, post = await _setup(open_from=8 * 60 + 30, open_until=11 * 60)
    clock.set(local(2026, 3, 7, 8, 29))
    refused = await _refused(records.check_in(user=member, post_id=post.id, code=code_for(post)))
    assert "本岗位服务时间为 08:30–11:00" in refused.message
    clock.set(local(2026, 3, 7, 8, 30))
    assert (await records.check_in(user=member, post_id=post.id, code=code_for(post))).status == (
        "open"
    )
    # Staff record service done at night by hand: no hours apply to that.
    clock.set(local(2026, 3, 9, 9, 0))
    offline = await records.add_offline_record(
        actor=staff,
        data=OfflineRecordIn(
            user_id=member.id,
            community_id=community.id,
            post_id=post.id,
            started_at=local(2026, 3, 8, 22, 0),
            ended_at=local(2026, 3, 8, 23, 0),
        ),
    )
    assert (offline.source, offline.minutes) == ("offline", 60)


async def test_hours_are_validated_on_create_and_update(db):
    community, staff, _, post = await _setup()
    for open_from, open_until, field in (
        (600, 600, "open_until"),
        (900, 600, "open_until"),
        (-1, 600, "open_from"),
        (1440, 1440, "open_from"),
        (0, 1441, "open_until"),
    ):
        with pytest.raises(Invalid) as caught:
            await make_post(community, staff, open_from=open_from, open_until=open_until)
        assert field in caught.value.fields
    round_the_clock = await make_post(community, staff, open_from=0, open_until=1440)
    assert views.opening_hours(round_the_clock) == "00:00–24:00"

    changed = await posts.update_post(
        actor=staff, post_id=post.id, data=PostPatch(open_until=18 * 60)
    )
    assert (changed.open_from, changed.open_until) == (7 * 60, 18 * 60)
    with pytest.raises(Invalid) as caught:
        await posts.update_post(actor=staff, post_id=post.id, data=PostPatch(open_from=19 * 60))
    assert "open_until" in caught.value.fields
    assert (await ServicePost.get(id=post.id)).open_from == 7 * 60


async def test_api_sets_shows_and_enforces_the_hours(client: httpx.AsyncClient):
    clock.set(local(2026, 3, 7, 9, 0))
    community = await make_community()
    staff = await make_staff(community)
    member, _ = await make_member(community, staff)
    body = {"community_id": community.id, "title": "早高峰文明劝导岗", "term": 2026}

    bad = await client.post(
        "/api/v1/posts",
        json=body | {"open_from": 600, "open_until": 540},
        headers=auth_headers(staff),
    )
    assert bad.status_code == 422 and "open_until" in bad.json()["error"]["fields"]
    outside = await client.post(
        "/api/v1/posts", json=body | {"open_until": 1500}, headers=auth_headers(staff)
    )
    assert outside.status_code == 422 and "open_until" in outside.json()["error"]["fields"]

    created = await client.post(
        "/api/v1/posts",
        json=body | {"open_from": 7 * 60, "open_until": 9 * 60 + 30},
        headers=auth_headers(staff),
    )
    assert created.status_code == 201, created.text
    post = created.json()
    assert (post["open_from"], post["open_until"], post["opening_hours"]) == (
        420,
        570,
        "07:00–09:30",
    )
    await posts.claim_post(user=member, post_id=post["id"])
    stored = await ServicePost.get(id=post["id"])

    clock.set(local(2026, 3, 7, 10, 0))
    closed = await client.post(
        f"/api/v1/posts/{post['id']}/checkin",
        json={"code": code_for(stored)},
        headers=auth_headers(member),
    )
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "post_off_hours"
    assert "07:00–09:30" in closed.json()["error"]["message"]

    patched = await client.patch(
        f"/api/v1/posts/{post['id']}", json={"open_until": 12 * 60}, headers=auth_headers(staff)
    )
    assert patched.json()["opening_hours"] == "07:00–12:00"
    opened = await client.post(
        f"/api/v1/posts/{post['id']}/checkin",
        json={"code": code_for(stored)},
        headers=auth_headers(member),
    )
    assert opened.status_code == 201, opened.text

    spec = (await client.get("/openapi.json")).json()
    checkin_responses = spec["paths"]["/api/v1/posts/{post_id}/checkin"]["post"]["responses"]
    assert "post_off_hours" in checkin_responses["409"]["description"]
    assert "checkin_locked" in checkin_responses["429"]["description"]


async def test_staff_set_the_hours_on_the_h5_form_and_members_see_them(
    client: httpx.AsyncClient,
):
    community, staff, member, post = await _setup()
    client.cookies.update(session_cookies(staff))
    page = f"/h5/party/staff/posts?community_id={community.id}"
    form = (await client.get(page)).text
    assert 'name="open_from"' in form and 'value="07:00"' in form and 'value="21:00"' in form
    fields = {
        "csrf_token": csrf_token(form),
        "community_id": community.id,
        "term": 2026,
        "title": "午间巡查岗",
        "kind": "task",
    }

    typo = await client.post(
        "/h5/party/staff/posts", data=fields | {"open_from": "11点", "open_until": "13:30"}
    )
    assert typo.status_code == 422 and "服务开始时间请按 07:00 这样的格式填写" in typo.text
    assert 'value="11点"' in typo.text  # what was typed stays in the box
    backwards = await client.post(
        "/h5/party/staff/posts", data=fields | {"open_from": "14:00", "open_until": "13:30"}
    )
    assert backwards.status_code == 422 and "服务结束时间须晚于开始时间" in backwards.text
    created = await client.post(
        "/h5/party/staff/posts", data=fields | {"open_from": "11:00", "open_until": "13:30"}
    )
    assert created.status_code == 303
    task = await ServicePost.get(title="午间巡查岗")
    assert (task.open_from, task.open_until) == (660, 810)

    detail = (await client.get(created.headers["location"])).text
    assert "11:00–13:30" in detail
    edited = await client.post(
        f"/h5/party/staff/posts/{task.id}/edit",
        data={
            "csrf_token": csrf_token(detail),
            "status": "active",
            "open_from": "11:00",
            "open_until": "24:00",
        },
    )
    assert edited.status_code == 303
    assert (await ServicePost.get(id=task.id)).open_until == 1440

    client.cookies.clear()
    client.cookies.update(session_cookies(member))
    posts = (await client.get(f"/h5/party/posts?community_id={community.id}")).text
    assert "服务时间 11:00–24:00" in posts and "服务时间 07:00–21:00" in posts
    checkin_page = (await client.get(f"/h5/party/checkin?post={post.id}")).text
    assert "本岗位服务时间 07:00–21:00" in checkin_page

    clock.set(local(2026, 3, 7, 22, 0))
    refused = await client.post(
        "/h5/party/checkin",
        data={
            "csrf_token": csrf_token(checkin_page),
            "post_id": post.id,
            "code": code_for(post),
            "action": "in",
        },
    )
    assert refused.status_code == 409 and "本岗位服务时间为 07:00–21:00" in refused.text


# --- wrong codes lock one person out ---


async def test_wrong_codes_lock_a_member_out_of_the_post_until_the_window_ends(db):
    # A community task: any approved member of the community may check in there.
    community, staff, guesser, task = await _setup(kind="task", capacity=0)
    neighbour, _ = await make_member(community, staff, phone="13912340000")
    clock.set(local(2026, 3, 7, 10, 0))
    for _ in range(LIMIT):
        wrong = await _refused(
            records.check_in(user=guesser, post_id=task.id, code=wrong_for(task))
        )
        assert wrong.code == "checkin_code_invalid"
    counter = await UsageCounter.get(key=f"checkin-fail:post:{task.id}:{guesser.id}")
    assert counter.count == LIMIT

    locked = await _refused(records.check_in(user=guesser, post_id=task.id, code=code_for(task)))
    assert (locked.status_code, locked.code) == (429, "checkin_locked")
    assert "10:15 后再试" in locked.message
    assert not await ServiceRecord.exists(user_id=guesser.id)

    record = await records.check_in(user=neighbour, post_id=task.id, code=code_for(task))
    assert record.user_id == neighbour.id

    clock.advance(timedelta(minutes=15))
    record = await records.check_in(user=guesser, post_id=task.id, code=code_for(task))
    assert (record.user_id, record.status) == (guesser.id, "open")


async def test_the_api_answers_429_and_check_out_shares_the_lockout(client: httpx.AsyncClient):
    _, _, member, post = await _setup()
    clock.set(local(2026, 3, 7, 10, 0))
    await records.check_in(user=member, post_id=post.id, code=code_for(post))
    clock.set(local(2026, 3, 7, 11, 0))
    url = f"/api/v1/posts/{post.id}/checkout"
    for _ in range(LIMIT):
        wrong = await client.post(url, json={"code": wrong_for(post)}, headers=auth_headers(member))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "checkin_code_invalid")
    locked = await client.post(url, json={"code": code_for(post)}, headers=auth_headers(member))
    assert (locked.status_code, locked.json()["error"]["code"]) == (429, "checkin_locked")
    assert locked.headers["Retry-After"] == str(15 * 60)
    assert (await ServiceRecord.get(user_id=member.id)).status == "open"

    clock.set(local(2026, 3, 7, 11, 15))
    out = await client.post(url, json={"code": code_for(post)}, headers=auth_headers(member))
    assert out.status_code == 200 and out.json()["status"] == "closed"
    assert (await ServiceRecord.get(user_id=member.id)).minutes == 75
