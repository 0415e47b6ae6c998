"""The Redis sold-out gate: fast "full", rebuilt from the database, never the source of truth."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.activities import bookings, gate
from backend.activities.models import Activity
from backend.core.redis import RedisKeyValue, get_kv
from tests.factories import make_community, make_user
from tests.factories.activities import freeze, make_activity, residents

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def counter(activity: Activity) -> int | None:
    kv = get_kv()
    assert isinstance(kv, RedisKeyValue)
    value = await kv.client.get(f"{kv.prefix}activity-gate:{activity.id}")
    return None if value is None else int(value)


async def holders(activity: Activity) -> set[int]:
    kv = get_kv()
    members = await kv.client.smembers(f"{kv.prefix}activity-gate:{activity.id}:holders")
    return {int(m) for m in members}


async def set_counter(activity: Activity, value: int) -> None:
    kv = get_kv()
    await kv.client.set(f"{kv.prefix}activity-gate:{activity.id}", value, ex=60)


def book(user: User, activity: Activity):
    return bookings.book_activity(user_id=user.id, activity_id=activity.id)


async def code(coro) -> str:
    try:
        await coro
    except Exception as exc:
        return getattr(exc, "code", repr(exc))
    return "ok"


async def test_the_counter_is_built_from_the_database_and_follows_bookings(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2, waitlist_capacity=1)
    people = await residents(community, 4)
    assert await counter(activity) is None
    await book(people[0], activity)
    assert await counter(activity) == 2
    await book(people[1], activity)
    await book(people[2], activity)
    assert await counter(activity) == 0
    assert await code(book(people[3], activity)) == "sold_out"
    # The person holding a place hears so, with or without the gate.
    assert await code(book(people[0], activity)) == ("already_booked")


async def test_full_is_answered_by_the_gate_and_a_missing_counter_is_rebuilt(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=0)
    first, second = await residents(community, 2)
    await book(first, activity)
    # Seats added behind the service's back: the gate still says full, so it answered alone.
    await Activity.filter(id=activity.id).update(capacity=2)
    assert await code(book(second, activity)) == "sold_out"
    await gate.forget(activity.id)
    view = await book(second, activity)
    assert view.booking.status == "confirmed"


async def test_a_failed_database_step_gives_the_reservation_back(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3, waitlist_capacity=0)
    [resident] = await residents(community, 1)
    outsider = await make_user(community=await make_community())
    await book(resident, activity)
    assert await counter(activity) == 2
    assert await code(book(outsider, activity)) == ("not_eligible")
    assert await code(book(resident, activity)) == ("already_booked")
    assert await counter(activity) == 2
    assert await holders(activity) == {resident.id}


async def test_a_gate_that_says_yes_wrongly_cannot_oversell(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=0)
    first, second = await residents(community, 2)
    await book(first, activity)
    await set_counter(activity, 99)
    assert await code(book(second, activity)) == "sold_out"
    assert (await Activity.get(id=activity.id)).booked == 1
    # The place the database refused is not handed back, and nobody new holds one.
    assert await counter(activity) == 98
    assert await holders(activity) == {first.id}


async def test_freed_places_reset_the_counter(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=0)
    first, second = await residents(community, 2)
    view = await book(first, activity)
    assert await counter(activity) == 0
    await bookings.cancel_booking(user=first, booking_id=view.booking.id)
    assert await counter(activity) is None
    assert await holders(activity) == set()
    assert (await book(second, activity)).booking.status == ("confirmed")
    assert await holders(activity) == {second.id}


async def test_bookings_go_on_when_redis_is_unreachable(db, monkeypatch):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=0)
    first, second = await residents(community, 2)
    dead = RedisKeyValue("redis://127.0.0.1:9/0")
    monkeypatch.setattr(gate, "_redis", lambda: dead)
    try:
        await book(first, activity)
        assert await code(book(second, activity)) == ("sold_out")
    finally:
        await dead.close()
