"""POST /api/v1/me/subscriptions: recording mini-program subscribe-message consents."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from backend.core.clock import clock
from backend.notices import consents as notices_consents
from tests.factories import auth_headers, make_community, make_staff, make_user

PATH = "/api/v1/me/subscriptions"


async def test_consents_add_up(client):
    user = await make_user()
    headers = auth_headers(user)

    async def consent(template_key: str, accepted: int):
        body = {"template_key": template_key, "accepted": accepted}
        return await client.post(PATH, json=body, headers=headers)

    first = await consent("booking", 3)
    second = await consent("booking", 2)
    other = await consent("reward", 1)

    assert first.status_code == 200, first.text
    assert first.json() == {"template_key": "booking", "remaining": 3}
    assert second.json() == {"template_key": "booking", "remaining": 5}
    assert other.json() == {"template_key": "reward", "remaining": 1}


async def test_unknown_template_key_and_bad_counts_are_invalid(client):
    headers = auth_headers(await make_user())
    for body, field in (
        ({"template_key": "spam", "accepted": 1}, "template_key"),
        ({"template_key": "notice", "accepted": 0}, "accepted"),
        ({"template_key": "notice", "accepted": 51}, "accepted"),
        ({"template_key": "notice", "accepted": "many"}, "accepted"),
        ({"template_key": "notice"}, "accepted"),
        ({"template_key": "notice", "accepted": 1, "extra": 1}, "extra"),
    ):
        response = await client.post(PATH, json=body, headers=headers)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert field in error["fields"], (body, error)


async def test_needs_a_logged_in_user(client):
    response = await client.post(PATH, json={"template_key": "notice", "accepted": 1})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_an_idempotency_key_records_consents_once(client):
    user = await make_user()
    headers = {**auth_headers(user), "Idempotency-Key": "consent-1"}
    body = {"template_key": "wish", "accepted": 2}

    first = await client.post(PATH, json=body, headers=headers)
    again = await client.post(PATH, json=body, headers=headers)

    assert first.json() == again.json() == {"template_key": "wish", "remaining": 2}
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await notices_consents.consents_left(user_id=user.id, template_key="wish") == 2


async def test_concurrent_first_consents_are_all_counted(client):
    user = await make_user()
    headers = auth_headers(user)

    responses = await asyncio.gather(
        *(
            client.post(PATH, json={"template_key": "notice", "accepted": 1}, headers=headers)
            for _ in range(10)
        )
    )

    assert {r.status_code for r in responses} == {200}
    assert await notices_consents.consents_left(user_id=user.id, template_key="notice") == 10


async def test_documented_in_openapi(client):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"][PATH]["post"]
    assert {"401", "422"} <= set(operation["responses"])


# --- notices ---

NOTICES = "/api/v1/notices"


async def staff_and_community():
    community = await make_community()
    staff = await make_staff(community)
    return community, staff


async def test_staff_publish_a_notice_and_anyone_reads_it(client):
    community, staff = await staff_and_community()
    body = {"community_id": community.id, "title": "停水通知", "body": "明天 9 点停水。"}

    created = await client.post(NOTICES, json=body, headers=auth_headers(staff))

    assert created.status_code == 201, created.text
    notice = created.json()
    assert notice["status"] == "published" and notice["audience"] == "all"
    assert notice["publisher"] == community.name
    listed = await client.get(NOTICES, params={"community_id": community.id})
    assert [n["id"] for n in listed.json()["items"]] == [notice["id"]]
    assert listed.json()["next_cursor"] is None
    detail = await client.get(f"{NOTICES}/{notice['id']}")
    assert detail.json()["body"] == "明天 9 点停水。"


async def test_scheduled_notice_is_hidden_until_due_and_can_be_cancelled(client):
    community, staff = await staff_and_community()
    headers = auth_headers(staff)
    body = {
        "community_id": community.id,
        "title": "防汛演练",
        "body": "周六上午演练。",
        "publish_at": (clock.now() + timedelta(days=2)).isoformat(),
    }
    notice = (await client.post(NOTICES, json=body, headers=headers)).json()
    assert notice["status"] == "scheduled"

    assert (await client.get(NOTICES)).json()["items"] == []
    assert (await client.get(f"{NOTICES}/{notice['id']}")).status_code == 404
    mine = await client.get(NOTICES, params={"status": "scheduled"}, headers=headers)
    assert [n["id"] for n in mine.json()["items"]] == [notice["id"]]

    cancelled = await client.post(f"{NOTICES}/{notice['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"{NOTICES}/{notice['id']}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "notice_not_cancellable"


async def test_residents_cannot_publish_and_bad_bodies_are_invalid(client):
    community, staff = await staff_and_community()
    resident = await make_user(community=community)
    body = {"community_id": community.id, "title": "通知", "body": "内容"}
    refused = await client.post(NOTICES, json=body, headers=auth_headers(resident))
    assert refused.status_code == 403
    assert (await client.post(NOTICES, json=body)).status_code == 401
    for bad, field in (
        ({**body, "audience": "aliens"}, "audience"),
        ({**body, "title": ""}, "title"),
        ({**body, "building_ids": [1], "audience": "residents"}, "building_ids"),
        ({**body, "link": "ftp://x"}, "link"),
        ({**body, "publish_at": "tomorrow"}, "publish_at"),
        ({**body, "community_id": 2**40}, "community_id"),
    ):
        response = await client.post(NOTICES, json=bad, headers=auth_headers(staff))
        assert response.status_code == 422, bad
        assert field in response.json()["error"]["fields"], response.json()


async def test_preview_shows_the_message_and_the_recipient_count(client):
    community, staff = await staff_and_community()
    community.wecom_robot_key = "robot"
    await community.save()
    for _ in range(3):
        await make_user(community=community)
    body = {
        "community_id": community.id,
        "title": "关于开展夏季消防安全检查的通知（请各楼组长转告）",
        "body": "7 月 1 日起开展消防检查。",
        "link": "/h5/activities/1",
    }

    response = await client.post(f"{NOTICES}/preview", json=body, headers=auth_headers(staff))

    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["recipients"] == 4  # three residents and the staff member, who lives there
    assert preview["robot"] is True
    assert len(preview["fields"]["thing1"]) == 20 and preview["fields"]["thing1"].endswith("…")
    assert preview["fields"]["thing2"] == community.name
    assert "7 月 1 日起开展消防检查。" in preview["markdown"]
    assert (await client.get(NOTICES)).json()["items"] == []  # nothing stored


async def test_delivery_counts_are_for_the_notices_staff(client):
    community, staff = await staff_and_community()
    body = {"community_id": community.id, "title": "通知", "body": "内容"}
    notice = (await client.post(NOTICES, json=body, headers=auth_headers(staff))).json()

    counts = await client.get(f"{NOTICES}/{notice['id']}/delivery", headers=auth_headers(staff))
    assert counts.status_code == 200, counts.text
    assert counts.json() == {
        "notice_id": notice["id"],
        "recipients": 0,
        "fanout_done": False,
        "sent": 0,
        "pending": 0,
        "skipped": 0,
        "failed": 0,
        "failed_by_reason": [],
        "robot": {"sent": 0, "pending": 0, "failed": 0},
    }
    stranger = await make_user(community=community)
    forbidden = await client.get(
        f"{NOTICES}/{notice['id']}/delivery", headers=auth_headers(stranger)
    )
    assert forbidden.status_code == 403


async def test_publishing_with_an_idempotency_key_creates_one_notice(client):
    community, staff = await staff_and_community()
    headers = {**auth_headers(staff), "Idempotency-Key": "notice-1"}
    body = {"community_id": community.id, "title": "通知", "body": "内容"}
    first = await client.post(NOTICES, json=body, headers=headers)
    again = await client.post(NOTICES, json=body, headers=headers)
    assert first.json() == again.json()
    assert len((await client.get(NOTICES)).json()["items"]) == 1


async def test_notice_routes_are_documented(client):
    spec = (await client.get("/openapi.json")).json()
    assert {"401", "403", "422"} <= set(spec["paths"][NOTICES]["post"]["responses"])
    assert "409" in spec["paths"][f"{NOTICES}/{{notice_id}}/cancel"]["post"]["responses"]
    assert "403" in spec["paths"][f"{NOTICES}/{{notice_id}}/delivery"]["get"]["responses"]
