"""A 30-seat class with a 20-place waitlist never gives out more than 50 places, however many
press 报名 in the same second.

The control case comes first: with the seat's guarded UPDATE replaced by read-check-write
(the test-only LINLI_TEST_UNGUARDED_BOOKING switch), the same burst against two server
processes on PostgreSQL oversells — so the real tests are able to fail. Then the real
burst, with and without the Redis sold-out gate, across two workers: exactly 30 confirmed,
20 waitlisted with positions 1–20, the rest sold_out, no 5xx; and cancellations promote
in waitlist order. The same burst in one process runs on SQLite (and PostgreSQL + Redis).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.accounts.service import issue_access_token
from backend.activities import catalogue
from backend.activities.models import Activity, Booking
from backend.activities.schemas import ActivityIn
from backend.core.db import close_db, init_db
from tests.concurrency.harness import Tally, fire, load_client
from tests.factories import make_community, make_staff
from tests.factories.activities import activity_fields

SEATS = 30
WAITLIST = 20
REQUESTS = 500
CANCELLATIONS = 10

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_class() -> tuple[Activity, list[User]]:
    """A 30+20 lunchtime class open now, and REQUESTS residents who want it."""
    community = await make_community()
    staff = await make_staff(community)
    fields = activity_fields(community, capacity=SEATS, waitlist_capacity=WAITLIST)
    view = await catalogue.create_activity(actor=staff, data=ActivityIn(**fields))
    await User.bulk_create(
        [User(nickname=f"抢课{i}", community_id=community.id) for i in range(REQUESTS)]
    )
    people = await User.filter(community_id=community.id, nickname__startswith="抢课").order_by(
        "id"
    )
    return view.activity, people


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_access_token(user_id=user.id)}"}


async def burst(client: httpx.AsyncClient, activity: Activity, people: list[User]) -> Tally:
    headers = [bearer(p) for p in people]

    async def book(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/activities/{activity.id}/bookings", headers=headers[i])

    return await fire(client, len(people), book)


async def assert_exactly_fifty_places(tally: Tally, activity: Activity) -> None:
    assert not [o for o in tally.outcomes if o.status >= 500], tally.statuses
    statuses = Counter(o.body.get("status") for o in tally.successes())
    assert statuses == {"confirmed": SEATS, "waitlisted": WAITLIST}, tally.codes
    assert tally.count(409, "sold_out") == REQUESTS - SEATS - WAITLIST, tally.codes
    assert len(tally.outcomes) == REQUESTS
    positions = sorted(
        o.body["waitlist_position"] for o in tally.successes() if o.body["status"] == "waitlisted"
    )
    assert positions == list(range(1, WAITLIST + 1))
    fresh = await Activity.get(id=activity.id)
    assert (fresh.booked, fresh.waitlisted) == (SEATS, WAITLIST)
    stored = Counter(await Booking.filter(activity_id=activity.id).values_list("status", flat=True))
    assert stored == {"confirmed": SEATS, "waitlisted": WAITLIST}


async def assert_cancellations_promote_in_order(
    client: httpx.AsyncClient, tally: Tally, activity: Activity
) -> None:
    """Cancel CANCELLATIONS seats at once: the first CANCELLATIONS in line move up, in order."""
    by_position = sorted(
        (o.body for o in tally.successes() if o.body["status"] == "waitlisted"),
        key=lambda b: b["waitlist_position"],
    )
    seated = [o.body["id"] for o in tally.successes() if o.body["status"] == "confirmed"]
    owners = dict(await Booking.filter(id__in=seated[:CANCELLATIONS]).values_list("id", "user_id"))
    users = {u.id: u for u in await User.filter(id__in=owners.values())}

    async def cancel(c: httpx.AsyncClient, i: int) -> httpx.Response:
        booking_id = seated[i]
        return await c.delete(
            f"/api/v1/bookings/{booking_id}", headers=bearer(users[owners[booking_id]])
        )

    cancelled = await fire(client, CANCELLATIONS, cancel)
    assert cancelled.statuses == {200: CANCELLATIONS}, cancelled.codes

    promoted = [b["id"] for b in by_position[:CANCELLATIONS]]
    still_waiting = [b["id"] for b in by_position[CANCELLATIONS:]]
    rows = {b.id: b for b in await Booking.filter(activity_id=activity.id)}
    assert [rows[i].status for i in promoted] == ["confirmed"] * CANCELLATIONS
    assert [rows[i].status for i in still_waiting] == ["waitlisted"] * len(still_waiting)
    # The remaining line keeps its order and closes up: positions 1..10.
    owner_of = {i: rows[i].user_id for i in still_waiting}
    waiting_users = {u.id: u for u in await User.filter(id__in=owner_of.values())}
    for expected, booking_id in enumerate(still_waiting, start=1):
        mine = await client.get(
            "/api/v1/me/bookings", headers=bearer(waiting_users[owner_of[booking_id]])
        )
        [item] = mine.json()["items"]
        assert item["waitlist_position"] == expected
    fresh = await Activity.get(id=activity.id)
    assert (fresh.booked, fresh.waitlisted) == (SEATS, WAITLIST - CANCELLATIONS)


async def _against_two_workers(settings, live_server_factory, **server_env: str):
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(live_server_factory, workers=2, **server_env)
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    return server


# --- the control case: without the guard the same burst oversells ---


@postgres_only
@pytest.mark.slow
async def test_control_read_check_write_oversells(settings, live_server_factory):
    server = await _against_two_workers(
        settings,
        live_server_factory,
        LINLI_TEST_UNGUARDED_BOOKING="1",
        LINLI_ACTIVITY_GATE="off",
    )
    try:
        activity, people = await make_class()
        async with load_client(server.base_url, connections=REQUESTS) as client:
            tally = await burst(client, activity, people)
        said_confirmed = sum(o.body.get("status") == "confirmed" for o in tally.successes())
        confirmed = await Booking.filter(activity_id=activity.id, status="confirmed").count()
        assert said_confirmed == confirmed > SEATS, f"no oversell: {confirmed} seats given"
    finally:
        await close_db()


def test_the_unguarded_switch_is_refused_in_production(monkeypatch):
    from pydantic import ValidationError

    from backend.core.config import Settings

    monkeypatch.setenv("LINLI_ENV", "prod")
    monkeypatch.setenv("LINLI_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("LINLI_TEST_UNGUARDED_BOOKING", "1")
    with pytest.raises(ValidationError, match="tests only"):
        Settings()


# --- the real thing ---


@postgres_only
@pytest.mark.slow
@pytest.mark.parametrize("gate", ["on", "off"], ids=["redis-gate", "no-gate"])
async def test_burst_across_two_workers(settings, live_server_factory, gate):
    server = await _against_two_workers(settings, live_server_factory, LINLI_ACTIVITY_GATE=gate)
    try:
        activity, people = await make_class()
        async with load_client(server.base_url, connections=REQUESTS) as client:
            tally = await burst(client, activity, people)
            await assert_exactly_fifty_places(tally, activity)
            await assert_cancellations_promote_in_order(client, tally, activity)
    finally:
        await close_db()


@pytest.mark.slow
async def test_burst_in_one_process(client):
    activity, people = await make_class()
    tally = await burst(client, activity, people)
    await assert_exactly_fifty_places(tally, activity)
    await assert_cancellations_promote_in_order(client, tally, activity)
