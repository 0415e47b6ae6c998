"""The activities API over HTTP: shapes and every error code of the contract."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from backend.activities import draws
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.config import reset_settings
from tests.factories import auth_headers, make_community, make_staff, make_user, session_cookies
from tests.factories.activities import activity_fields, as_json, freeze, make_activity


def code_of(response) -> str:
    return response.json()["error"]["code"]


async def post_booking(client, activity, user, **headers):
    return await client.post(
        f"/api/v1/activities/{activity.id}/bookings", headers={**auth_headers(user), **headers}
    )


async def test_staff_create_and_the_public_read_seats_and_state(client):
    freeze()
    community = await make_community()
    staff = await make_staff(community)
    body = as_json(activity_fields(community, capacity=30, waitlist_capacity=20))
    created = await client.post("/api/v1/activities", json=body, headers=auth_headers(staff))
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["seats_left"] == 30 and activity["waitlist_left"] == 20
    assert activity["booking_state"] == "open" and activity["audience"] == ["resident"]
    assert datetime.fromisoformat(activity["starts_at"]).utcoffset() == timedelta(0)

    listed = await client.get(f"/api/v1/activities?community_id={community.id}&upcoming=true")
    assert [a["id"] for a in listed.json()["items"]] == [activity["id"]]
    assert listed.json()["next_cursor"] is None
    detail = await client.get(f"/api/v1/activities/{activity['id']}")
    assert detail.json()["title"] == "舞韵瑜伽"
    clock.advance(timedelta(days=10))
    listed = await client.get(f"/api/v1/activities?community_id={community.id}&upcoming=true")
    assert listed.json()["items"] == []


async def test_book_then_waitlist_then_every_409(client, monkeypatch):
    monkeypatch.setenv("LINLI_ACTIVITY_MONTHLY_LIMITS", json.dumps({"午间一小时": 1}))
    reset_settings()
    now = freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=1)
    first, second, third = [await make_user(community=community) for _ in range(3)]

    booked = await post_booking(client, activity, first)
    assert booked.status_code == 201
    body = booked.json()
    assert (body["activity_id"], body["status"], body["waitlist_position"]) == (
        activity.id,
        "confirmed",
        None,
    )
    assert isinstance(body["id"], int)
    waitlisted = await post_booking(client, activity, second)
    assert waitlisted.status_code == 201
    assert (waitlisted.json()["status"], waitlisted.json()["waitlist_position"]) == (
        "waitlisted",
        1,
    )

    sold_out = await post_booking(client, activity, third)
    assert (sold_out.status_code, code_of(sold_out)) == (409, "sold_out")
    assert sold_out.json()["error"]["message"]
    again = await post_booking(client, activity, first)
    assert (again.status_code, code_of(again)) == (409, "already_booked")
    other = await make_activity(community, capacity=5)
    limited = await post_booking(client, other, first)
    assert (limited.status_code, code_of(limited)) == (409, "limit_reached")

    later = await make_activity(
        community,
        category="文化",
        booking_opens_at=now + timedelta(hours=1),
        booking_closes_at=now + timedelta(hours=2),
    )
    assert code_of(await post_booking(client, later, third)) == "booking_not_open"
    clock.set(now + timedelta(hours=2))
    assert code_of(await post_booking(client, later, third)) == "booking_closed"


async def test_not_eligible_is_403_and_unknown_activity_404_and_anonymous_401(client):
    freeze()
    activity = await make_activity(await make_community())
    outsider = await make_user(community=await make_community())
    refused = await post_booking(client, activity, outsider)
    assert (refused.status_code, code_of(refused)) == (403, "not_eligible")
    missing = await client.post(
        "/api/v1/activities/999999/bookings", headers=auth_headers(outsider)
    )
    assert (missing.status_code, code_of(missing)) == (404, "not_found")
    anonymous = await client.post(f"/api/v1/activities/{activity.id}/bookings")
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthenticated")
    huge = await client.get(f"/api/v1/activities/{2**70}")
    assert (huge.status_code, code_of(huge)) == (422, "invalid")


async def test_idempotent_booking_retry_returns_the_first_answer(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3)
    resident = await make_user(community=community)
    first = await post_booking(client, activity, resident, **{"Idempotency-Key": "tap-1"})
    retry = await post_booking(client, activity, resident, **{"Idempotency-Key": "tap-1"})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert await Booking.filter(activity_id=activity.id).count() == 1
    assert (await Activity.get(id=activity.id)).booked == 1
    # A new key is a new attempt: the person already holds the place.
    fresh = await post_booking(client, activity, resident, **{"Idempotency-Key": "tap-2"})
    assert code_of(fresh) == "already_booked"


async def test_cancel_own_booking_others_get_404_and_deadline_409(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=1)
    owner, waiting, stranger = [await make_user(community=community) for _ in range(3)]
    booking = (await post_booking(client, activity, owner)).json()
    await post_booking(client, activity, waiting)

    foreign = await client.delete(
        f"/api/v1/bookings/{booking['id']}", headers=auth_headers(stranger)
    )
    assert (foreign.status_code, code_of(foreign)) == (404, "not_found")

    clock.set(activity.cancel_deadline)
    late = await client.delete(f"/api/v1/bookings/{booking['id']}", headers=auth_headers(owner))
    assert (late.status_code, code_of(late)) == (409, "cancel_deadline_passed")
    freeze()
    ok = await client.delete(f"/api/v1/bookings/{booking['id']}", headers=auth_headers(owner))
    assert ok.status_code == 200 and ok.json() == {"id": booking["id"], "status": "cancelled"}

    mine = await client.get("/api/v1/me/bookings", headers=auth_headers(waiting))
    [item] = mine.json()["items"]
    assert (item["status"], item["waitlist_position"], item["activity_title"]) == (
        "confirmed",
        None,
        "舞韵瑜伽",
    )


async def test_staff_routes_refuse_residents_and_other_communities(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community)
    resident = await make_user(community=community)
    other_staff = await make_staff(await make_community())
    body = as_json(activity_fields(community))
    create = await client.post("/api/v1/activities", json=body, headers=auth_headers(resident))
    assert (create.status_code, code_of(create)) == (403, "forbidden")
    create = await client.post("/api/v1/activities", json=body, headers=auth_headers(other_staff))
    assert (create.status_code, code_of(create)) == (403, "forbidden")
    for path in ("checkin-code", "cancel"):
        response = await client.post(
            f"/api/v1/activities/{activity.id}/{path}", json={}, headers=auth_headers(other_staff)
        )
        assert response.status_code == 403, path
    listing = await client.get(
        f"/api/v1/activities/{activity.id}/bookings", headers=auth_headers(resident)
    )
    assert listing.status_code == 403


async def test_bad_input_is_422_with_fields(client):
    freeze()
    community = await make_community()
    staff = await make_staff(community)
    body = activity_fields(community)
    body["ends_at"] = body["starts_at"] - timedelta(hours=1)
    response = await client.post(
        "/api/v1/activities", json=as_json(body), headers=auth_headers(staff)
    )
    assert (response.status_code, code_of(response)) == (422, "invalid")
    assert "ends_at" in response.json()["error"]["fields"]
    naive = as_json(activity_fields(community)) | {"starts_at": "2025-06-14T10:00:00"}
    response = await client.post("/api/v1/activities", json=naive, headers=auth_headers(staff))
    assert "starts_at" in response.json()["error"]["fields"]
    response = await client.post(
        "/api/v1/activities",
        json=as_json(activity_fields(community)) | {"category": "赛车"},
        headers=auth_headers(staff),
    )
    assert "category" in response.json()["error"]["fields"]


async def test_check_in_by_code_and_attendance_list(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2, points=5)
    staff = await Activity.get(id=activity.id).prefetch_related("created_by")
    staff = staff.created_by
    resident = await make_user(community=community)
    await post_booking(client, activity, resident)
    clock.set(activity.starts_at)

    issued = await client.post(
        f"/api/v1/activities/{activity.id}/checkin-code", headers=auth_headers(staff)
    )
    assert issued.status_code == 200
    assert set(issued.json()) == {"code", "expires_at", "url"}
    wrong = await client.post(
        f"/api/v1/activities/{activity.id}/checkin",
        json={"code": "000000" if issued.json()["code"] != "000000" else "111111"},
        headers=auth_headers(resident),
    )
    assert (wrong.status_code, code_of(wrong)) == (409, "checkin_code_invalid")
    ok = await client.post(
        f"/api/v1/activities/{activity.id}/checkin",
        json={"code": issued.json()["code"]},
        headers=auth_headers(resident),
    )
    assert ok.json() == {"status": "attended", "points_awarded": 5}

    listing = await client.get(
        f"/api/v1/activities/{activity.id}/bookings", headers=auth_headers(staff)
    )
    [row] = listing.json()["items"]
    assert (row["status"], row["user_id"], row["checked_in_at"] is not None) == (
        "attended",
        resident.id,
        True,
    )
    marked = await client.post(
        f"/api/v1/bookings/{row['id']}/attendance",
        json={"status": "no_show"},
        headers=auth_headers(staff),
    )
    assert marked.status_code == 409


async def test_draw_record_for_staff(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=0, mode="draw")
    staff = (await Activity.get(id=activity.id).prefetch_related("created_by")).created_by
    people = [await make_user(community=community) for _ in range(3)]
    for person in people:
        entered = await post_booking(client, activity, person)
        assert entered.json()["status"] == "entered"
    before = await client.get(f"/api/v1/activities/{activity.id}/draw", headers=auth_headers(staff))
    assert before.json()["seed"] is None and before.json()["seed_hash"]
    clock.set(activity.booking_closes_at)
    await draws.run_due_draws()
    after = await client.get(f"/api/v1/activities/{activity.id}/draw", headers=auth_headers(staff))
    record = after.json()
    assert hashlib.sha256(record["seed"].encode()).hexdigest() == record["seed_hash"]
    assert [e["status"] for e in record["entries"]] == ["confirmed", "not_drawn", "not_drawn"]
    public = await client.get(f"/api/v1/activities/{activity.id}")
    assert public.json()["draw_seed"] == record["seed"]


async def test_openapi_documents_the_routes_and_their_errors(client):
    spec = (await client.get("/openapi.json")).json()
    booking = spec["paths"]["/api/v1/activities/{activity_id}/bookings"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(booking["responses"])
    for path in (
        "/api/v1/activities",
        "/api/v1/bookings/{booking_id}",
        "/api/v1/me/bookings",
        "/api/v1/activities/{activity_id}/checkin-code",
        "/api/v1/activities/{activity_id}/checkin",
    ):
        assert path in spec["paths"], path


async def test_no_show_blocked_code(client):
    freeze()
    community = await make_community()
    resident = await make_user(community=community)
    for _ in range(3):
        past = await make_activity(community, capacity=3)
        await Booking.create(
            activity=past,
            user=resident,
            status="no_show",
            created_at=clock.now(),
        )
    hot = await make_activity(community, capacity=3, high_demand=True)
    response = await post_booking(client, hot, resident)
    assert (response.status_code, code_of(response)) == (409, "no_show_blocked")


async def test_an_idempotency_key_reused_for_another_class_is_refused(client):
    freeze()
    community = await make_community()
    first, second = await make_activity(community), await make_activity(community)
    resident = await make_user(community=community)
    key = {"Idempotency-Key": "tap-3"}
    assert (await post_booking(client, first, resident, **key)).status_code == 201
    reused = await post_booking(client, second, resident, **key)
    assert (reused.status_code, code_of(reused)) == (422, "idempotency_mismatch")
    assert not await Booking.exists(activity_id=second.id)


async def test_booking_takes_the_h5_session_and_refuses_forged_tokens(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community)
    resident = await make_user(community=community)
    path = f"/api/v1/activities/{activity.id}/bookings"
    forged = await client.post(path, headers={"Authorization": "Bearer forged"})
    assert (forged.status_code, code_of(forged)) == (401, "unauthenticated")
    assert forged.headers["www-authenticate"] == "Bearer"
    client.cookies.update(session_cookies(resident))
    # A cookie-authenticated POST names its origin, as every browser does.
    assert (await client.post(path, headers={"Origin": "http://testserver"})).status_code == 201
