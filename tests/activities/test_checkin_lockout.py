"""Activity check-in by rotating code: five wrong codes from one person lock that person out
of that activity's check-in for the rest of the 15-minute window, counted in the database
even though each wrong request fails; a right code works again once the window ends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.accounts.models import User
from backend.activities import attendance, bookings
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.errors import DomainError
from backend.core.models import UsageCounter
from tests.factories import auth_headers, make_community, session_cookies
from tests.factories.activities import freeze, make_activity, residents
from tests.h5.conftest import csrf_token

LIMIT = 5  # the default LINLI_CHECKIN_MAX_FAILURES


async def _booked_activity(people: int) -> tuple[Activity, list[User]]:
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=people, points=5)
    bookers = await residents(community, people)
    for person in bookers:
        await bookings.book_activity(user_id=person.id, activity_id=activity.id)
    # The class starts at 10:00 Shanghai time, which also starts a 15-minute window.
    clock.set(activity.starts_at)
    return activity, bookers


async def _code(activity: Activity) -> str:
    staff = await User.get(id=activity.created_by_id)
    return (await attendance.issue_checkin_code(actor=staff, activity_id=activity.id)).code


async def _wrong(activity: Activity) -> str:
    return "000000" if await _code(activity) != "000000" else "111111"


async def _refused(coro) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await coro
    return caught.value


async def test_wrong_codes_lock_out_one_person_until_the_window_ends(db):
    activity, (guesser, neighbour) = await _booked_activity(2)
    for _ in range(LIMIT):
        wrong = await _refused(
            attendance.check_in(user=guesser, activity_id=activity.id, code=await _wrong(activity))
        )
        assert wrong.code == "checkin_code_invalid"

    # Even the right code is refused now, with when to come back.
    locked = await _refused(
        attendance.check_in(user=guesser, activity_id=activity.id, code=await _code(activity))
    )
    assert (locked.status_code, locked.code) == (429, "checkin_locked")
    assert "10:15 后再试" in locked.message
    assert (await Booking.get(user_id=guesser.id)).status == "confirmed"

    # The neighbour at the same class is not locked.
    assert (
        await attendance.check_in(
            user=neighbour, activity_id=activity.id, code=await _code(activity)
        )
        == 5
    )

    clock.advance(timedelta(minutes=15))
    assert (
        await attendance.check_in(user=guesser, activity_id=activity.id, code=await _code(activity))
        == 5
    )
    assert (await Booking.get(user_id=guesser.id)).status == "attended"
    assert (await User.get(id=guesser.id)).points_balance == 5


async def test_the_api_answers_429_checkin_locked_and_counts_failed_requests(client):
    activity, (guesser, neighbour) = await _booked_activity(2)
    url = f"/api/v1/activities/{activity.id}/checkin"
    for _ in range(LIMIT):
        wrong = await client.post(
            url, json={"code": await _wrong(activity)}, headers=auth_headers(guesser)
        )
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "checkin_code_invalid")
    # Each failed request rolled nothing back from the count.
    counter = await UsageCounter.get(key=f"checkin-fail:activity:{activity.id}:{guesser.id}")
    assert counter.count == LIMIT

    locked = await client.post(
        url, json={"code": await _code(activity)}, headers=auth_headers(guesser)
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "checkin_locked"
    assert "后再试" in locked.json()["error"]["message"]
    assert locked.headers["Retry-After"] == str(15 * 60)

    ok = await client.post(
        url, json={"code": await _code(activity)}, headers=auth_headers(neighbour)
    )
    assert ok.json() == {"status": "attended", "points_awarded": 5}

    clock.advance(timedelta(minutes=15, seconds=1))
    again = await client.post(
        url, json={"code": await _code(activity)}, headers=auth_headers(guesser)
    )
    assert again.json() == {"status": "attended", "points_awarded": 5}


async def test_the_h5_check_in_page_says_when_to_try_again(client):
    activity, (guesser,) = await _booked_activity(1)
    client.cookies.update(session_cookies(guesser))
    page = f"/h5/activities/{activity.id}/checkin"
    for _ in range(LIMIT):
        form = {"csrf_token": csrf_token((await client.get(page)).text)}
        await client.post(page, data=form | {"code": await _wrong(activity)})
    form = {"csrf_token": csrf_token((await client.get(page)).text)}
    locked = await client.post(page, data=form | {"code": await _code(activity)})
    assert locked.status_code == 429
    assert "签到码输错次数过多，请于 10:15 后再试" in locked.text
    assert (await Booking.get(user_id=guesser.id)).status == "confirmed"


async def test_check_in_codes_are_documented_in_openapi(client):
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/api/v1/activities/{activity_id}/checkin"]["post"]["responses"]
    assert "checkin_locked" in responses["429"]["description"]
    assert "checkin_code_invalid" in responses["409"]["description"]
