"""Bookings and the waitlist: a seat, else a waitlist place, else sold out (draw mode: an
entry); cancelling and the promotion it sets off; the monthly limits and the no-show block.

Every invariant is one guarded statement or a unique key, so any number of app processes
can book at once:

- a seat: ``UPDATE activity SET booked = booked + 1 WHERE id = ? AND booked < capacity``
  (and the booking window and status in the same WHERE); a waitlist place likewise with
  ``waitlisted < waitlist_capacity``, handing out the next ticket of ``waitlist_issued``;
- one live booking per person and activity: the unique ``booking.live_key``;
- the monthly limit: a per-person counter raised by ``used < limit``.

Lock order, to stay free of deadlocks: activity row, then quota counters, then existing
booking rows. Booking inserts its new row and takes its quota before the activity row,
which is safe because anyone holding the activity and waiting for that person's quota is
handling that person's live booking, whose existence makes the insert fail at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import gate, notify
from backend.activities import unguarded as unguarded_booking
from backend.activities.access import load_activity
from backend.activities.exceptions import (
    ActivityCancelled,
    AlreadyBooked,
    BookingClosed,
    BookingNotOpen,
    CancelDeadlinePassed,
    LimitReached,
    NoShowBlocked,
    NotCancellable,
    NotEligible,
    SoldOut,
)
from backend.activities.models import CANCELLABLE_STATUSES, Activity, Booking, BookingQuota
from backend.activities.views import ActivityView, BookingView, booking_state
from backend.core import unguarded
from backend.core.clock import clock, to_local
from backend.core.config import get_settings
from backend.core.db import is_postgres
from backend.core.errors import NotFound
from backend.core.ids import may_exist
from backend.core.models import OutboxMessage
from backend.core.pagination import Page, PageRequest, paginate

# --- reading ---


async def waitlist_position(booking: Booking) -> int | None:
    """A waitlisted booking's place in line, counted live (1 = promoted next)."""
    if booking.status != "waitlisted" or booking.waitlist_ticket is None:
        return None
    return await Booking.filter(
        activity_id=booking.activity_id,
        status="waitlisted",
        waitlist_ticket__lte=booking.waitlist_ticket,
    ).count()


async def booking_view(booking: Booking, activity: Activity | None = None) -> BookingView:
    return BookingView(booking, await waitlist_position(booking), activity)


async def get_my_booking(*, user: User, activity_id: int) -> BookingView | None:
    """The user's live booking of this activity, else their latest one, else None."""
    booking = await Booking.get_or_none(live_key=f"{activity_id}:{user.id}")
    if booking is None:
        booking = (
            await Booking.filter(activity_id=activity_id, user_id=user.id).order_by("-id").first()
        )
    return None if booking is None else await booking_view(booking)


async def list_my_bookings(
    *, user: User, page: PageRequest, status: str | None = None
) -> Page[BookingView]:
    """The user's bookings, newest first, with activity and live waitlist position."""
    query = Booking.filter(user_id=user.id)
    if status is not None:
        query = query.filter(status=status)
    result = await paginate(query, page, descending=True)
    activities = {
        a.id: a for a in await Activity.filter(id__in={b.activity_id for b in result.items})
    }
    return Page(
        items=[await booking_view(b, activities[b.activity_id]) for b in result.items],
        next_cursor=result.next_cursor,
    )


# --- eligibility, window, demand, no-shows ---


async def _check_eligible(user: User, view: ActivityView) -> None:
    activity = view.activity
    communities = view.community_ids or [activity.community_id]
    if activity.for_residents and user.community_id in communities:
        return
    if (
        activity.for_workers
        and user.building_id is not None
        and (not view.building_ids or user.building_id in view.building_ids)
    ):
        return
    if activity.for_party_members:
        for community_id in communities:
            if await accounts_service.has_role(user, "party_member", community_id):
                return
    raise NotEligible()


def _check_window(activity: Activity, now: datetime) -> None:
    if activity.status == "cancelled":
        raise ActivityCancelled()
    state = booking_state(activity, now)
    if state == "not_open":
        raise BookingNotOpen()
    if state == "closed":
        raise BookingClosed()


def in_demand(activity: Activity) -> bool:
    """Whether places are scarce: marked hot, drawn, or mostly booked already."""
    return (
        activity.high_demand
        or activity.mode == "draw"
        or activity.booked >= math.ceil(activity.capacity * notify.DEMAND_SHARE)
    )


async def booking_blocked_until(*, user_id: int) -> datetime | None:
    """Until when repeated no-shows keep the user from high-demand activities (None: free)."""
    settings = get_settings()
    now = clock.now()
    window = timedelta(days=settings.no_show_window_days)
    block = timedelta(days=settings.no_show_block_days)
    times = sorted(
        await Booking.filter(
            user_id=user_id,
            status="no_show",
            excused_at=None,
            activity__starts_at__gte=now - window - block,
        ).values_list("activity__starts_at", flat=True)
    )
    limit = settings.no_show_limit
    until = None
    for i in range(limit - 1, len(times)):
        if times[i] - times[i - limit + 1] <= window and times[i] + block > now:
            until = times[i] + block
    return until


async def _check_not_blocked(user: User, activity: Activity) -> None:
    if not in_demand(activity):
        return
    until = await booking_blocked_until(user_id=user.id)
    if until is not None:
        local = to_local(until)
        raise NoShowBlocked(f"近期多次报名未到场，{local.month}月{local.day}日前暂不能报名热门活动")


# --- the guarded statements ---


def _open_now(now: datetime) -> Q:
    return Q(status="published", booking_opens_at__lte=now, booking_closes_at__gt=now)


# The guarded statements that take a place, in SQL for RETURNING: the value they set comes
# back with them. Taking the seat is the last statement before the commit, so the hot row
# is locked for one round trip.
_TAKE_SEAT = (
    "UPDATE activity SET booked = booked + 1"
    " WHERE id = ? AND booked < capacity"
    " AND status = 'published' AND booking_opens_at <= ? AND booking_closes_at > ?"
    " RETURNING booked"
)
_TAKE_WAITLIST_PLACE = (
    "UPDATE activity SET waitlisted = waitlisted + 1, waitlist_issued = waitlist_issued + 1"
    " WHERE id = ? AND waitlisted < waitlist_capacity"
    " AND status = 'published' AND booking_opens_at <= ? AND booking_closes_at > ?"
    " RETURNING waitlist_issued"
)


# One statement per booking for the monthly limit: create the counter at 1, or raise it
# while it is under the limit (no row comes back when it is not).
_HOLD_QUOTA = (
    'INSERT INTO booking_quota (user_id, "key", used) VALUES (?, ?, 1)'
    ' ON CONFLICT (user_id, "key") DO UPDATE SET used = booking_quota.used + 1'
    " WHERE booking_quota.used < ?"
    " RETURNING used"
)


async def _returning(sql: str, *values: Any) -> Any | None:
    """Run a guarded write ... RETURNING one column: the value, or None when it did nothing."""
    if is_postgres():
        head, *rest = sql.split("?")
        sql = head + "".join(f"${n}{piece}" for n, piece in enumerate(rest, start=1))
    rows = await connections.get("default").execute_query_dict(sql, list(values))
    return next(iter(rows[0].values())) if rows else None


async def _take_seat_in_tx(activity_id: int, now: datetime) -> int | None:
    """The seats booked after taking one, or None when there is none to take."""
    if unguarded.enabled("booking"):
        return await unguarded_booking.take_seat_in_tx(activity_id, _open_now(now))
    return await _returning(_TAKE_SEAT, activity_id, now, now)


# --- monthly limits ---


def _quota_key(activity: Activity) -> tuple[str, int] | None:
    limit = get_settings().activity_monthly_limits.get(activity.category)
    if limit is None:
        return None
    month = to_local(activity.starts_at).strftime("%Y-%m")
    return f"{activity.category}|{month}", limit


async def _hold_quota_in_tx(user_id: int, activity: Activity) -> None:
    quota = _quota_key(activity)
    if quota is None:
        return
    key, limit = quota
    if limit > 0 and await _returning(_HOLD_QUOTA, user_id, key, limit) is not None:
        return
    raise LimitReached(f"本月“{activity.category}”类活动每人最多报名 {limit} 次，您的次数已用完")


async def release_quotas_in_tx(bookings: Iterable[Booking]) -> None:
    """Give back the monthly-limit uses of bookings that no longer hold a place."""
    # Sorted, so two transactions releasing the same people's counters lock them in one order.
    for booking in sorted(bookings, key=lambda b: (b.user_id, b.quota_key or "")):
        if booking.quota_key:
            await BookingQuota.filter(
                user_id=booking.user_id, key=booking.quota_key, used__gt=0
            ).update(used=F("used") - 1)


# --- booking ---


async def _insert_booking_in_tx(
    user: User, activity: Activity, now: datetime, status: str
) -> Booking:
    # The new row comes first, so a second booking by the same person fails on the unique
    # key (already_booked) before it counts against their monthly limit.
    quota = _quota_key(activity)
    try:
        booking = await Booking.create(
            activity_id=activity.id,
            user_id=user.id,
            status=status,
            live_key=f"{activity.id}:{user.id}",
            quota_key=quota[0] if quota else None,
            created_at=now,
            confirmed_at=now if status == "confirmed" else None,
        )
    except IntegrityError as exc:
        raise AlreadyBooked() from exc
    await _hold_quota_in_tx(user.id, activity)
    return booking


async def _place_in_tx(user: User, activity: Activity, now: datetime) -> BookingView:
    booking = await _insert_booking_in_tx(user, activity, now, "confirmed")
    # Queued before the seat is taken, so the seat's UPDATE is followed only by the commit.
    # No place at all rolls it back with the rest; a waitlist place withdraws it below.
    await notify.tell_booker(booking, activity, "confirmed", "confirmed")
    booked = await _take_seat_in_tx(activity.id, now)
    if booked is not None:
        await notify.alert_staff_in_tx(activity, booked)
        return BookingView(booking, None, activity)
    ticket = await _returning(_TAKE_WAITLIST_PLACE, activity.id, now, now)
    if ticket is None:
        _check_window(await Activity.get(id=activity.id), now)
        raise SoldOut()
    await OutboxMessage.filter(dedupe_key=notify.notice_key(booking, "confirmed")).delete()
    await Booking.filter(id=booking.id).update(
        status="waitlisted", waitlist_ticket=ticket, confirmed_at=None
    )
    booking.status, booking.waitlist_ticket, booking.confirmed_at = "waitlisted", ticket, None
    await notify.tell_booker(booking, activity, "waitlisted", "waitlisted")
    return BookingView(booking, await waitlist_position(booking), activity)


async def _enter_draw_in_tx(user: User, activity: Activity, now: datetime) -> BookingView:
    booking = await _insert_booking_in_tx(user, activity, now, "entered")
    # Under the row lock the draw also takes, so no entry lands after the draw ran.
    entered = await Activity.filter(_open_now(now), id=activity.id, drawn_at=None).update(
        entries=F("entries") + 1
    )
    if not entered:
        _check_window(await Activity.get(id=activity.id), now)
        raise BookingClosed()
    return BookingView(booking, None, activity)


async def book_activity(*, user_id: int, activity_id: int) -> BookingView:
    """Give the person a seat, else a waitlist place, else SoldOut (draw mode: an entry).

    The seat and the waitlist place are each one guarded UPDATE, the one live booking per
    person a unique key, and the monthly limit a guarded counter, all in one transaction.
    With Redis, a full class is answered by the sold-out gate before any database read
    (sold_out, or already_booked for someone the gate knows holds a place).
    """
    reservation = await gate.reserve(activity_id, user_id)
    if reservation is not None and reservation.outcome == gate.FULL:
        raise SoldOut()
    if reservation is not None and reservation.outcome == gate.HOLDER:
        raise AlreadyBooked()
    try:
        # The API's caller id carries its token version: a logged-out token stops here.
        user = accounts_service.check_caller(await User.get_or_none(id=user_id), user_id)
        activity = await load_activity(activity_id)
        now = clock.now()
        _check_window(activity, now)
        view = ActivityView.of(activity, now)
        await _check_eligible(user, view)
        await _check_not_blocked(user, activity)
        if activity.mode == "draw":
            async with in_transaction():
                return await _enter_draw_in_tx(user, activity, now)
        if reservation is not None and reservation.outcome == gate.UNKNOWN:
            reservation = await gate.rebuild_and_reserve(
                activity_id,
                user_id,
                places_left=view.seats_left + view.waitlist_left,
                closes_at=activity.booking_closes_at,
            )
            if reservation is not None and reservation.outcome == gate.FULL:
                raise SoldOut()
        async with in_transaction():
            placed = await _place_in_tx(user, activity, now)
    except SoldOut:
        # The database says the place the gate promised does not exist: do not return it.
        await gate.give_back(reservation, place_exists=False)
        raise
    except AlreadyBooked:
        await gate.give_back(reservation, holds_place=True)
        raise
    except BaseException:
        await gate.give_back(reservation)
        raise
    return placed


# --- cancelling and promotion ---


async def promote_in_tx(activity_id: int, now: datetime) -> int:
    """Move waitlisted people onto free seats in ticket order; returns how many moved."""
    promoted = 0
    while True:
        first = (
            await Booking.filter(activity_id=activity_id, status="waitlisted")
            .order_by("waitlist_ticket")
            .first()
        )
        if first is None:
            return promoted
        moved = await Activity.filter(id=activity_id, booked__lt=F("capacity")).update(
            booked=F("booked") + 1, waitlisted=F("waitlisted") - 1
        )
        if not moved:
            return promoted
        await Booking.filter(id=first.id, status="waitlisted").update(
            status="confirmed", confirmed_at=now
        )
        activity = await Activity.get(id=activity_id)
        await notify.tell_booker(first, activity, "promoted", "promoted")
        await notify.alert_staff_in_tx(activity, activity.booked)
        promoted += 1


class _StatusChanged(Exception):
    """The booking changed between reading it and locking it (rolls the transaction back)."""


async def _cancel_in_tx(booking: Booking, activity: Activity, now: datetime) -> None:
    await Activity.filter(id=activity.id).select_for_update(no_key=True).first()
    await release_quotas_in_tx([booking])
    cancelled = await Booking.filter(id=booking.id, status=booking.status).update(
        status="cancelled", live_key=None, quota_key=None, cancelled_at=now
    )
    if not cancelled:
        raise _StatusChanged()
    if booking.status == "confirmed":
        await Activity.filter(id=activity.id).update(booked=F("booked") - 1)
        await promote_in_tx(activity.id, now)
    elif booking.status == "waitlisted":
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") - 1)
    else:
        await Activity.filter(id=activity.id).update(entries=F("entries") - 1)


async def cancel_booking(*, user: User, booking_id: int) -> Booking:
    """The booker cancels (confirmed only before the deadline): the seat goes to the first
    waitlisted person in the same transaction. Someone else's booking is NotFound."""
    for _ in range(3):
        booking = (
            await Booking.get_or_none(id=booking_id, user_id=user.id)
            if may_exist(booking_id)
            else None
        )
        if booking is None:
            raise NotFound("报名记录不存在")
        if booking.status == "cancelled":
            return booking
        if booking.status not in CANCELLABLE_STATUSES:
            raise NotCancellable()
        activity = await load_activity(booking.activity_id)
        now = clock.now()
        if booking.status == "confirmed" and now >= activity.cancel_deadline:
            raise CancelDeadlinePassed()
        if now >= activity.starts_at:
            raise CancelDeadlinePassed("活动已开始，不能取消了")
        try:
            async with in_transaction():
                await _cancel_in_tx(booking, activity, now)
        except _StatusChanged:
            continue  # promoted or drawn meanwhile, and rolled back: look again
        await gate.forget(activity.id, user_id=user.id)
        return await Booking.get(id=booking.id)
    raise NotCancellable("报名状态刚刚发生变化，请刷新后重试")
