"""The booking rules, on SQLite and on PostgreSQL + Redis, through the service functions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from backend.accounts.models import User
from backend.activities import attendance, bookings, catalogue, draws, export
from backend.activities import reminders as activity_reminders
from backend.activities.models import Activity, Booking, BookingQuota
from backend.activities.schemas import ActivityPatch
from backend.activities.views import BookingView
from backend.core.clock import clock
from backend.core.config import reset_settings
from backend.core.errors import DomainError, Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.points import rules as points_rules
from backend.points.models import PointsLedgerEntry
from backend.points.schemas import RuleIn
from tests.factories import make_building, make_community, make_staff, make_street_admin, make_user
from tests.factories.activities import freeze, make_activity, residents


async def book(user: User, activity: Activity) -> BookingView:
    return await bookings.book_activity(user_id=user.id, activity_id=activity.id)


async def refused(coro) -> str:
    with pytest.raises(DomainError) as caught:
        await coro
    return caught.value.code


async def positions(activity: Activity) -> dict[int, int | None]:
    page = await attendance.list_activity_bookings(
        actor=await staff_of(activity),
        activity_id=activity.id,
        page=PageRequest(limit=100),
        status="waitlisted",
    )
    return {v.booking.user_id: v.waitlist_position for v in page.items}


async def staff_of(activity: Activity) -> User:
    return await User.get(id=activity.created_by_id)


async def counters(activity: Activity) -> tuple[int, int]:
    fresh = await Activity.get(id=activity.id)
    return fresh.booked, fresh.waitlisted


def dedupe_keys(prefix: str) -> list[str]:
    return OutboxMessage.filter(dedupe_key__startswith=prefix).values_list("dedupe_key", flat=True)


@pytest.fixture
def limits(monkeypatch):
    """Set the monthly limits for the rest of the test."""

    def set_limits(value: dict[str, int]) -> None:
        monkeypatch.setenv("LINLI_ACTIVITY_MONTHLY_LIMITS", json.dumps(value))
        reset_settings()

    return set_limits


# --- seats, waitlist, sold out ---


async def test_seats_then_waitlist_then_sold_out(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2, waitlist_capacity=2)
    people = await residents(community, 5)

    results = [await book(p, activity) for p in people[:4]]
    assert [r.booking.status for r in results] == ["confirmed", "confirmed"] + ["waitlisted"] * 2
    assert [r.waitlist_position for r in results] == [None, None, 1, 2]
    assert await refused(book(people[4], activity)) == "sold_out"
    assert await counters(activity) == (2, 2)
    view = await catalogue.get_activity(activity_id=activity.id)
    assert (view.seats_left, view.waitlist_left, view.booking_state) == (0, 0, "open")


async def test_one_live_booking_per_person_and_rebooking_after_cancel(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=5)
    [resident] = await residents(community, 1)
    first = await book(resident, activity)
    assert await refused(book(resident, activity)) == "already_booked"
    await bookings.cancel_booking(user=resident, booking_id=first.booking.id)
    again = await book(resident, activity)
    assert again.booking.status == "confirmed" and again.booking.id != first.booking.id
    assert await Booking.filter(activity_id=activity.id).count() == 2
    assert await counters(activity) == (1, 0)


async def test_cancel_promotes_the_first_waitlisted_and_positions_close_up(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=3)
    seated, w1, w2, w3 = await residents(community, 4)
    seat = await book(seated, activity)
    for person in (w1, w2, w3):
        await book(person, activity)
    assert await positions(activity) == {w1.id: 1, w2.id: 2, w3.id: 3}

    # A waitlisted person leaving closes the gap behind them.
    w2_booking = await Booking.get(user_id=w2.id, activity_id=activity.id)
    await bookings.cancel_booking(user=w2, booking_id=w2_booking.id)
    assert await positions(activity) == {w1.id: 1, w3.id: 2}

    # The seat-holder leaving promotes the first in line, in the same transaction.
    await bookings.cancel_booking(user=seated, booking_id=seat.booking.id)
    assert (await Booking.get(user_id=w1.id, activity_id=activity.id)).status == "confirmed"
    assert await positions(activity) == {w3.id: 1}
    assert await counters(activity) == (1, 1)
    promoted = await OutboxMessage.get(dedupe_key__endswith=":promoted")
    assert promoted.user_id == w1.id and promoted.context["status"] == "promoted"


async def test_cancelling_twice_is_harmless_and_someone_elses_booking_is_not_found(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3)
    owner, other = await residents(community, 2)
    booking = (await book(owner, activity)).booking

    with pytest.raises(NotFound):
        await bookings.cancel_booking(user=other, booking_id=booking.id)
    assert (await Booking.get(id=booking.id)).status == "confirmed"

    await bookings.cancel_booking(user=owner, booking_id=booking.id)
    again = await bookings.cancel_booking(user=owner, booking_id=booking.id)
    assert again.status == "cancelled"
    assert await counters(activity) == (0, 0)


async def test_cancel_deadline_applies_to_seats_not_to_the_waitlist(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=1)
    seated, waiting = await residents(community, 2)
    seat = (await book(seated, activity)).booking
    line = (await book(waiting, activity)).booking
    clock.set(activity.cancel_deadline + timedelta(minutes=1))
    assert await refused(bookings.cancel_booking(user=seated, booking_id=seat.id)) == (
        "cancel_deadline_passed"
    )
    await bookings.cancel_booking(user=waiting, booking_id=line.id)
    clock.set(activity.starts_at)
    assert await refused(bookings.cancel_booking(user=seated, booking_id=seat.id)) == (
        "cancel_deadline_passed"
    )


# --- window and audience ---


async def test_booking_window(db):
    now = freeze()
    community = await make_community()
    activity = await make_activity(
        community,
        booking_opens_at=now + timedelta(hours=1),
        booking_closes_at=now + timedelta(hours=2),
    )
    [resident] = await residents(community, 1)
    assert await refused(book(resident, activity)) == "booking_not_open"
    assert (await catalogue.get_activity(activity_id=activity.id)).booking_state == "not_open"
    clock.set(now + timedelta(hours=1))
    assert (await book(resident, activity)).booking.status == "confirmed"
    [late] = await residents(community, 1)
    clock.set(now + timedelta(hours=2))
    assert await refused(book(late, activity)) == "booking_closed"
    assert (await catalogue.get_activity(activity_id=activity.id)).booking_state == "closed"


async def test_audience_residents_workers_of_listed_buildings_and_party_members(db):
    freeze()
    community, elsewhere = await make_community(), await make_community()
    tower, other_tower = await make_building(), await make_building()
    resident = await make_user(community=community)
    outsider = await make_user(community=elsewhere)
    worker = await make_user(building=tower)
    other_worker = await make_user(building=other_tower)
    party = await make_user(community=elsewhere, roles=["party_member"])

    for_residents = await make_activity(community, capacity=10)
    assert (await book(resident, for_residents)).booking.status == "confirmed"
    for person in (outsider, worker, party):
        assert await refused(book(person, for_residents)) == "not_eligible"

    lunch = await make_activity(
        community, capacity=10, audience=["worker"], building_ids=[tower.id]
    )
    assert (await book(worker, lunch)).booking.status == "confirmed"
    for person in (other_worker, resident):
        assert await refused(book(person, lunch)) == "not_eligible"

    any_tower = await make_activity(community, capacity=10, audience=["worker"])
    assert (await book(other_worker, any_tower)).booking.status == "confirmed"

    party_day = await make_activity(
        community, capacity=10, audience=["party_member"], community_ids=[elsewhere.id]
    )
    assert (await book(party, party_day)).booking.status == "confirmed"
    assert await refused(book(outsider, party_day)) == "not_eligible"

    wider = await make_activity(community, capacity=10, community_ids=[community.id, elsewhere.id])
    assert (await book(outsider, wider)).booking.status == "confirmed"


async def test_the_my_building_filter_lists_classes_open_to_that_building(db):
    freeze()
    community = await make_community()
    tower, other_tower = await make_building(), await make_building()
    listed = await make_activity(community, audience=["worker"], building_ids=[tower.id])
    unlimited = await make_activity(community, audience=["worker"])
    await make_activity(community, audience=["worker"], building_ids=[other_tower.id])
    await make_activity(community, audience=["resident"])
    page = await catalogue.list_activities(page=PageRequest(), building_id=tower.id)
    assert [v.activity.id for v in page.items] == [listed.id, unlimited.id]


# --- monthly limit ---


async def test_monthly_limit_per_category(db, limits):
    limits({"午间一小时": 2})
    now = freeze()
    community = await make_community()
    staff = await make_staff(community)
    june = [await make_activity(community, staff=staff, capacity=5) for _ in range(3)]
    july = await make_activity(
        community,
        staff=staff,
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=1),
        cancel_deadline=now + timedelta(days=29),
        booking_closes_at=now + timedelta(days=29),
    )
    culture = await make_activity(community, staff=staff, category="文化")
    [resident] = await residents(community, 1)

    first = await book(resident, june[0])
    await book(resident, june[1])
    assert await refused(book(resident, june[2])) == "limit_reached"
    # Booking the same class again is "already booked", not "limit reached".
    assert await refused(book(resident, june[0])) == "already_booked"
    assert (await book(resident, july)).booking.status == "confirmed"
    assert (await book(resident, culture)).booking.status == "confirmed"

    await bookings.cancel_booking(user=resident, booking_id=first.booking.id)
    assert (await book(resident, june[2])).booking.status == "confirmed"
    quota = await BookingQuota.get(user_id=resident.id, key="午间一小时|2025-06")
    assert quota.used == 2


async def test_a_waitlist_place_counts_and_a_refused_booking_does_not(db, limits):
    limits({"午间一小时": 1})
    freeze()
    community = await make_community()
    full = await make_activity(community, capacity=1, waitlist_capacity=1)
    other = await make_activity(community, capacity=5)
    first, second, third = await residents(community, 3)
    await book(first, full)
    assert (await book(second, full)).booking.status == "waitlisted"
    assert await refused(book(second, other)) == "limit_reached"
    assert await refused(book(third, full)) == "sold_out"
    assert (await book(third, other)).booking.status == "confirmed"


# --- no-shows ---


async def _no_shows(user: User, community, count: int, *, every: timedelta) -> None:
    start = clock.now()
    for i in range(count):
        clock.set(start + every * i)
        activity = await make_activity(community, capacity=5)
        await book(user, activity)
        clock.set(activity.ends_at + timedelta(minutes=1))
        await attendance.mark_no_shows()
    clock.set(start)


async def test_three_no_shows_block_high_demand_activities_for_a_while(db):
    now = freeze()
    community = await make_community()
    staff = await make_staff(community)
    [resident] = await residents(community, 1)
    await _no_shows(resident, community, 3, every=timedelta(days=20))
    clock.set(now + timedelta(days=45))

    hot = await make_activity(community, staff=staff, capacity=5, high_demand=True)
    quiet = await make_activity(community, staff=staff, capacity=5)
    assert await refused(book(resident, hot)) == "no_show_blocked"
    assert (await book(resident, quiet)).booking.status == "confirmed"

    # Staff excuse one of them: two no-shows no longer block.
    absent = await Booking.filter(user_id=resident.id, status="no_show").first()
    view = await attendance.excuse_no_show(actor=staff, booking_id=absent.id)
    assert view.booking.excused_at is not None
    assert (await book(resident, hot)).booking.status == "confirmed"


async def test_the_block_ends_and_spread_out_no_shows_do_not_block(db):
    now = freeze()
    community = await make_community()
    blocked, spread = await residents(community, 2)
    await _no_shows(blocked, community, 3, every=timedelta(days=1))
    await _no_shows(spread, community, 3, every=timedelta(days=50))
    last_end = now + timedelta(days=2 + 3)
    clock.set(last_end + timedelta(days=29))
    assert await bookings.booking_blocked_until(user_id=blocked.id) is not None
    clock.set(now + timedelta(days=100 + 4))
    assert await bookings.booking_blocked_until(user_id=spread.id) is None
    clock.set(last_end + timedelta(days=31))
    assert await bookings.booking_blocked_until(user_id=blocked.id) is None


async def test_a_mostly_booked_class_counts_as_in_demand(db):
    freeze()
    community = await make_community()
    [resident] = await residents(community, 1)
    await _no_shows(resident, community, 3, every=timedelta(days=1))
    clock.advance(timedelta(days=5))
    activity = await make_activity(community, capacity=5)
    for person in await residents(community, 4):
        await book(person, activity)
    assert await refused(book(resident, activity)) == "no_show_blocked"


async def test_no_show_marking_runs_once_after_the_end(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3)
    came, absent = await residents(community, 2)
    await book(came, activity)
    await book(absent, activity)
    clock.set(activity.starts_at)
    code, _ = await _code(activity)
    await attendance.check_in(user=came, activity_id=activity.id, code=code)
    assert await attendance.mark_no_shows() == 0  # not over yet
    clock.set(activity.ends_at)
    assert await attendance.mark_no_shows() == 1
    assert await attendance.mark_no_shows() == 0
    statuses = dict(await Booking.filter(activity_id=activity.id).values_list("user_id", "status"))
    assert statuses == {came.id: "attended", absent.id: "no_show"}


# --- attendance and points ---


async def _code(activity: Activity) -> tuple[str, object]:
    code = await attendance.issue_checkin_code(
        actor=await staff_of(activity), activity_id=activity.id
    )
    return code.code, code.expires_at


async def test_check_in_awards_points_exactly_once(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2, waitlist_capacity=1, points=5)
    seated, _, waiting = await residents(community, 3)
    for person in (seated, _, waiting):
        await book(person, activity)
    clock.set(activity.starts_at - timedelta(minutes=10))
    code, expires_at = await _code(activity)
    assert expires_at > clock.now()

    assert await attendance.check_in(user=seated, activity_id=activity.id, code=code) == 5
    assert await attendance.check_in(user=seated, activity_id=activity.id, code=code) == 0
    assert (await User.get(id=seated.id)).points_balance == 5
    ledger = await PointsLedgerEntry.filter(user_id=seated.id)
    assert [(e.source_type, e.source_id, e.delta) for e in ledger] == [
        ("activity", str(activity.id), 5)
    ]
    assert await refused(attendance.check_in(user=waiting, activity_id=activity.id, code=code)) == (
        "not_booked"
    )
    # Staff marking the same person attended again pays nothing more.
    booking = await Booking.get(user_id=seated.id, activity_id=activity.id)
    await attendance.mark_attendance(
        actor=await staff_of(activity), booking_id=booking.id, attended=True
    )
    assert (await User.get(id=seated.id)).points_balance == 5


async def test_check_in_code_expires_and_is_bound_to_the_activity(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2)
    other = await make_activity(community, capacity=2)
    [resident] = await residents(community, 1)
    await book(resident, activity)
    clock.set(activity.starts_at)
    code, _ = await _code(activity)
    other_code, _ = await _code(other)
    if other_code != code:
        assert await refused(
            attendance.check_in(user=resident, activity_id=activity.id, code=other_code)
        ) == ("checkin_code_invalid")
    clock.advance(timedelta(seconds=61))
    assert await refused(
        attendance.check_in(user=resident, activity_id=activity.id, code=code)
    ) == ("checkin_code_invalid")
    fresh, _ = await _code(activity)
    assert await attendance.check_in(user=resident, activity_id=activity.id, code=fresh) == 5


async def test_check_in_only_during_the_activity(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=2)
    [resident] = await residents(community, 1)
    await book(resident, activity)
    clock.set(activity.starts_at - timedelta(hours=1))
    code, _ = await _code(activity)
    assert await refused(
        attendance.check_in(user=resident, activity_id=activity.id, code=code)
    ) == ("checkin_closed")
    clock.set(activity.ends_at)
    code, _ = await _code(activity)
    assert await refused(
        attendance.check_in(user=resident, activity_id=activity.id, code=code)
    ) == ("checkin_closed")


async def test_staff_mark_attendance_and_excuse(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3, points=8)
    staff = await staff_of(activity)
    came, absent = await residents(community, 2)
    came_booking = (await book(came, activity)).booking
    absent_booking = (await book(absent, activity)).booking
    assert await refused(
        attendance.mark_attendance(actor=staff, booking_id=came_booking.id, attended=True)
    ) == ("attendance_not_open")
    clock.set(activity.starts_at + timedelta(minutes=5))
    await attendance.mark_attendance(actor=staff, booking_id=came_booking.id, attended=True)
    view = await attendance.mark_attendance(
        actor=staff, booking_id=absent_booking.id, attended=False
    )
    assert view.booking.status == "no_show" and view.nickname == absent.nickname
    assert (await User.get(id=came.id)).points_balance == 8
    assert await refused(attendance.excuse_no_show(actor=staff, booking_id=came_booking.id)) == (
        "not_no_show"
    )
    outsider = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await attendance.excuse_no_show(actor=outsider, booking_id=absent_booking.id)


# --- draw mode ---


async def _draw_class(community, entrants: list[User], seed: str) -> Activity:
    activity = await make_activity(community, capacity=3, waitlist_capacity=2, mode="draw")
    await Activity.filter(id=activity.id).update(draw_seed=seed)
    for person in entrants:
        view = await book(person, activity)
        assert view.booking.status == "entered"
    return await Activity.get(id=activity.id)


async def test_draw_is_reproducible_from_the_seed_and_recorded(db):
    freeze()
    community = await make_community()
    people = await residents(community, 8)
    first = await _draw_class(community, people, seed="seed-1")
    second = await _draw_class(community, list(reversed(people)), seed="seed-1")
    third = await _draw_class(community, people, seed="seed-2")
    view = await catalogue.get_activity(activity_id=first.id)
    assert view.activity.draw_seed_hash and view.activity.entries == 8

    assert await draws.run_due_draws() == 0  # still open
    clock.set(first.booking_closes_at)
    assert await draws.run_due_draws() == 3
    assert await draws.run_due_draws() == 0  # once only

    async def outcome(activity: Activity) -> list[tuple[int, str]]:
        record = await draws.get_draw(actor=await staff_of(activity), activity_id=activity.id)
        return [(e.user_id, e.status) for e in record.entries]

    drawn = await outcome(first)
    assert drawn == await outcome(second)  # same seed and entrants, same result
    assert [uid for uid, _ in drawn] != [uid for uid, _ in await outcome(third)]
    assert [s for _, s in drawn] == ["confirmed"] * 3 + ["waitlisted"] * 2 + ["not_drawn"] * 3
    assert [uid for uid, _ in drawn] == draws.draw_order("seed-1", [p.id for p in people])
    assert await counters(first) == (3, 2)

    record = await draws.get_draw(actor=await staff_of(first), activity_id=first.id)
    assert record.seed == "seed-1"
    assert [e.rank for e in record.entries] == list(range(1, 9))
    assert all(e.nickname.endswith("**") for e in record.entries)
    # The waitlist keeps the drawn order, and a freed seat goes to the first of it.
    waitlisted = [uid for uid, status in drawn if status == "waitlisted"]
    assert await positions(first) == {waitlisted[0]: 1, waitlisted[1]: 2}
    losers = await Booking.filter(activity_id=first.id, status="not_drawn")
    told = await OutboxMessage.filter(dedupe_key__in=[f"booking:{b.id}:drawn" for b in losers])
    assert [m.template_key for m in told] == ["notice"] * 3


async def test_draw_entries_close_with_booking_and_cancel_before_the_draw(db):
    freeze()
    community = await make_community()
    staying, leaving, late = await residents(community, 3)
    activity = await _draw_class(community, [staying, leaving], seed="s")
    entry = await Booking.get(user_id=leaving.id, activity_id=activity.id)
    await bookings.cancel_booking(user=leaving, booking_id=entry.id)
    assert (await Activity.get(id=activity.id)).entries == 1
    clock.set(activity.booking_closes_at)
    assert await refused(book(late, activity)) == "booking_closed"
    assert await draws.draw_activity(activity_id=activity.id)
    assert (await Booking.get(user_id=staying.id, activity_id=activity.id)).status == "confirmed"


async def test_losing_a_draw_gives_the_monthly_booking_back(db, limits):
    limits({"午间一小时": 1})
    freeze()
    community = await make_community()
    people = await residents(community, 7)
    activity = await _draw_class(community, people, seed="quota")
    clock.set(activity.booking_closes_at)
    await draws.draw_activity(activity_id=activity.id)
    loser = await Booking.filter(activity_id=activity.id, status="not_drawn").first()
    quota = await BookingQuota.get(user_id=loser.user_id)
    assert quota.used == 0


# --- staff changes and notices ---


async def test_notices_for_confirmed_waitlisted_and_staff_alerts_exactly_once(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=5, waitlist_capacity=2)
    people = await residents(community, 7)
    views = [await book(p, activity) for p in people]
    assert await dedupe_keys(f"booking:{views[0].booking.id}:") == [
        f"booking:{views[0].booking.id}:confirmed"
    ]
    assert await dedupe_keys(f"booking:{views[6].booking.id}:") == [
        f"booking:{views[6].booking.id}:waitlisted"
    ]
    alerts = sorted(await dedupe_keys(f"activity:{activity.id}:fill"))
    assert alerts == [
        f"activity:{activity.id}:fill100:user:{activity.created_by_id}",
        f"activity:{activity.id}:fill80:user:{activity.created_by_id}",
    ]
    # Falling below 80% and filling up again does not alert twice.
    await bookings.cancel_booking(user=people[0], booking_id=views[0].booking.id)
    await bookings.cancel_booking(user=people[1], booking_id=views[1].booking.id)
    await bookings.cancel_booking(user=people[2], booking_id=views[2].booking.id)
    await book(await make_user(community=community), activity)
    assert len(await dedupe_keys(f"activity:{activity.id}:fill")) == 2


async def test_reminders_go_once_within_the_hour_before(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3, waitlist_capacity=1)
    people = await residents(community, 4)
    for person in people:
        await book(person, activity)
    assert await activity_reminders.send_reminders() == 0
    clock.set(activity.starts_at - timedelta(minutes=59))
    assert await activity_reminders.send_reminders() == 3
    assert await activity_reminders.send_reminders() == 0
    reminders = await OutboxMessage.filter(template_key="reminder")
    assert sorted(m.user_id for m in reminders) == sorted(p.id for p in people[:3])


async def test_editing_time_notifies_once_and_more_seats_promote(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=2)
    staff = await staff_of(activity)
    a, b, c = await residents(community, 3)
    for person in (a, b, c):
        await book(person, activity)
    later = activity.starts_at + timedelta(hours=1)
    patch = ActivityPatch(starts_at=later, ends_at=later + timedelta(hours=1))
    await catalogue.update_activity(actor=staff, activity_id=activity.id, patch=patch)
    await catalogue.update_activity(actor=staff, activity_id=activity.id, patch=patch)
    changed = await OutboxMessage.filter(dedupe_key__contains=":rev2:")
    assert sorted(m.user_id for m in changed) == sorted([a.id, b.id, c.id])
    assert not await OutboxMessage.filter(dedupe_key__contains=":rev3:").exists()

    view = await catalogue.update_activity(
        actor=staff, activity_id=activity.id, patch=ActivityPatch(capacity=2)
    )
    assert (view.activity.booked, view.activity.waitlisted) == (2, 1)
    assert (await Booking.get(user_id=b.id, activity_id=activity.id)).status == "confirmed"
    assert await positions(activity) == {c.id: 1}

    with pytest.raises(Invalid) as caught:
        await catalogue.update_activity(
            actor=staff, activity_id=activity.id, patch=ActivityPatch(capacity=1)
        )
    assert "capacity" in caught.value.fields
    assert await refused(
        catalogue.update_activity(
            actor=staff, activity_id=activity.id, patch=ActivityPatch(mode="draw")
        )
    ) == ("bookings_exist")


async def test_cancelling_an_activity_cancels_and_tells_everyone(db, limits):
    limits({"午间一小时": 1})
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=1)
    seated, waiting = await residents(community, 2)
    await book(seated, activity)
    await book(waiting, activity)
    staff = await staff_of(activity)
    view = await catalogue.cancel_activity(actor=staff, activity_id=activity.id, reason="场地维修")
    assert view.activity.status == "cancelled" and view.booking_state == "closed"
    assert set(await Booking.filter(activity_id=activity.id).values_list("status", flat=True)) == {
        "cancelled"
    }
    told = await OutboxMessage.filter(dedupe_key__endswith=":activity-cancelled")
    assert sorted(m.user_id for m in told) == sorted([seated.id, waiting.id])
    assert {m.context["status"] for m in told} == {"cancelled"}
    assert set(await BookingQuota.all().values_list("used", flat=True)) == {0}
    assert await refused(book(await make_user(community=community), activity)) == (
        "activity_cancelled"
    )
    await catalogue.cancel_activity(actor=staff, activity_id=activity.id)
    assert await OutboxMessage.filter(dedupe_key__endswith=":activity-cancelled").count() == 2


async def test_only_staff_of_the_community_manage_it(db):
    freeze()
    activity = await make_activity(await make_community())
    other_staff = await make_staff(await make_community())
    admin = await make_street_admin()
    with pytest.raises(Forbidden):
        await catalogue.cancel_activity(actor=other_staff, activity_id=activity.id)
    with pytest.raises(Forbidden):
        await attendance.issue_checkin_code(actor=other_staff, activity_id=activity.id)
    await attendance.issue_checkin_code(actor=admin, activity_id=activity.id)


async def test_times_must_be_in_order(db):
    freeze()
    community = await make_community()
    activity = await make_activity(community)
    staff = await staff_of(activity)
    with pytest.raises(Invalid) as caught:
        await make_activity(community, staff=staff, ends_at=activity.starts_at)
    assert "ends_at" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        await catalogue.update_activity(
            actor=staff,
            activity_id=activity.id,
            patch=ActivityPatch(booking_closes_at=activity.starts_at + timedelta(hours=1)),
        )
    assert "booking_closes_at" in caught.value.fields


async def test_export_lists_sign_ups_and_attendance(db):
    from io import BytesIO

    from openpyxl import load_workbook

    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=1, waitlist_capacity=1)
    seated = await make_user(community=community, nickname="王阿姨", phone="13812345678")
    waiting = await make_user(community=community, nickname="李师傅")
    await book(seated, activity)
    await book(waiting, activity)
    name, data = await export.export_bookings_xlsx(
        actor=await staff_of(activity), activity_id=activity.id
    )
    assert name.endswith(".xlsx")
    rows = list(load_workbook(BytesIO(data)).active.iter_rows(values_only=True))
    assert rows[1][:4] == ("序号", "昵称", "手机号", "状态")
    assert rows[2][1:5] == ("王阿姨", "138****5678", "报名成功", None)
    assert rows[3][1:5] == ("李师傅", None, "候补中", 1)


async def test_attendance_points_follow_the_earning_rule(db):
    freeze()
    community = await make_community()
    boss = await make_street_admin()
    await points_rules.create_rule(
        actor=boss,
        data=RuleIn(
            event_type="activity_attended", points=10, multiplier_percent=200, daily_cap=15
        ),
    )
    first = await make_activity(community, capacity=2, points=5)
    second = await make_activity(community, capacity=2, points=5)
    [resident] = await residents(community, 1)
    for activity in (first, second):
        await book(resident, activity)
    clock.set(first.starts_at)
    # The activity's own 5 points, doubled by the rule; the day's cap leaves 5 for the second.
    code, _ = await _code(first)
    assert await attendance.check_in(user=resident, activity_id=first.id, code=code) == 10
    code, _ = await _code(second)
    assert await attendance.check_in(user=resident, activity_id=second.id, code=code) == 5
    assert (await User.get(id=resident.id)).points_balance == 15
