"""Attendance: the rotating check-in code, checking in with it (points paid once), staff
marking who came, excusing a no-show, and the no-shows marked after the end."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.activities.access import load_activity, load_booking_for_staff, load_for_staff
from backend.activities.bookings import booking_view
from backend.activities.exceptions import (
    ActivityCancelled,
    AttendanceNotOpen,
    CheckinClosed,
    NotBooked,
    NotNoShow,
)
from backend.activities.models import Activity, Booking
from backend.activities.views import BookingView, CheckinCode
from backend.core import checkin
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import decrypt_field, mask_phone
from backend.points import rules as points_rules

POINTS_SOURCE = "activity"
# Check-in opens this long before the start and closes at the end.
CHECKIN_OPENS_BEFORE = timedelta(minutes=30)


def checkin_subject(activity_id: int) -> str:
    return f"activity:{activity_id}"


def checkin_url(activity_id: int, code: str) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/h5/activities/{activity_id}/checkin?code={code}"


async def attendees(bookings: list[Booking]) -> list[BookingView]:
    """The bookings with who made them, phones masked (what staff see at the door)."""
    users = {u.id: u for u in await User.filter(id__in={b.user_id for b in bookings})}
    views = []
    for booking in bookings:
        user = users[booking.user_id]
        view = await booking_view(booking)
        view.nickname = user.nickname
        view.phone = mask_phone(decrypt_field(user.phone_encrypted))
        views.append(view)
    return views


async def list_activity_bookings(
    *, actor: User, activity_id: int, page: PageRequest, status: str | None = None
) -> Page[BookingView]:
    """Staff: the activity's bookings in the order they came, with attendance."""
    await load_for_staff(actor, activity_id)
    query = Booking.filter(activity_id=activity_id)
    if status is not None:
        query = query.filter(status=status)
    result = await paginate(query, page)
    return Page(items=await attendees(result.items), next_cursor=result.next_cursor)


async def issue_checkin_code(*, actor: User, activity_id: int) -> CheckinCode:
    """Staff: the rotating check-in code valid now, its link, and when it rotates."""
    activity = await load_for_staff(actor, activity_id)
    if activity.status != "published":
        raise ActivityCancelled()
    code, expires_at = checkin.current_code(subject=checkin_subject(activity_id))
    return CheckinCode(code=code, expires_at=expires_at, url=checkin_url(activity_id, code))


def _checkin_open(activity: Activity, now: datetime) -> bool:
    return activity.starts_at - CHECKIN_OPENS_BEFORE <= now < activity.ends_at


async def _attend_in_tx(
    booking: Booking, activity: Activity, now: datetime, actor_id: int | None
) -> int | None:
    marked = await Booking.filter(id=booking.id, status__in=("confirmed", "no_show")).update(
        status="attended", checked_in_at=now, excused_at=None
    )
    if not marked:
        return None
    if activity.points <= 0:
        return 0
    # The activity sets its own points; the earning rule's multiplier and caps still apply.
    entry = await points_rules.award_by_rule_in_tx(
        user_id=booking.user_id,
        event_type="activity_attended",
        base_points=activity.points,
        source_type=POINTS_SOURCE,
        source_id=str(activity.id),
        reason=f"参加活动：{activity.title}"[:255],
        occurred_at=now,
        actor_id=actor_id,
    )
    return entry.delta if entry is not None else 0


async def check_in(*, user: User, activity_id: int, code: str) -> int:
    """The booker checks in with the code on the staff's screen: attended, points paid once;
    repeated wrong codes lock the person out for a while. Returns the points awarded by this
    call (0 on a repeat)."""
    activity = await load_activity(activity_id)
    now = clock.now()
    if activity.status != "published":
        raise ActivityCancelled()
    if not _checkin_open(activity, now):
        raise CheckinClosed()
    await checkin.verify_code_for(subject=checkin_subject(activity_id), user_id=user.id, code=code)
    booking = await Booking.get_or_none(live_key=f"{activity_id}:{user.id}")
    if booking is None or booking.status not in ("confirmed", "attended"):
        raise NotBooked()
    async with in_transaction():
        awarded = await _attend_in_tx(booking, activity, now, None)
    return awarded or 0


async def mark_attendance(*, actor: User, booking_id: int, attended: bool) -> BookingView:
    """Staff: mark a seat-holder attended (points paid once) or absent, after the start."""
    booking, activity = await load_booking_for_staff(actor, booking_id)
    now = clock.now()
    if now < activity.starts_at - CHECKIN_OPENS_BEFORE:
        raise AttendanceNotOpen()
    async with in_transaction():
        if attended:
            if await _attend_in_tx(booking, activity, now, actor.id) is None:
                current = await Booking.get(id=booking.id)
                if current.status != "attended":
                    raise NotBooked("只有报名成功的人可以登记出勤")
        elif not await Booking.filter(id=booking.id, status="confirmed").update(status="no_show"):
            current = await Booking.get(id=booking.id)
            if current.status != "no_show":
                raise NotBooked("只有报名成功且未签到的人可以标记未到场")
    return (await attendees([await Booking.get(id=booking.id)]))[0]


async def excuse_no_show(*, actor: User, booking_id: int) -> BookingView:
    """Staff: excuse a no-show, so it no longer counts against the person."""
    booking, _ = await load_booking_for_staff(actor, booking_id)
    async with in_transaction():
        excused = await Booking.filter(id=booking.id, status="no_show", excused_at=None).update(
            excused_at=clock.now(), excused_by_id=actor.id
        )
        if not excused and booking.status != "no_show":
            raise NotNoShow()
    return (await attendees([await Booking.get(id=booking.id)]))[0]


async def mark_no_shows() -> int:
    """After an activity ends, its confirmed-but-absent bookings become no_show (once)."""
    now = clock.now()
    due = await Activity.filter(
        status="published", ends_at__lte=now, no_shows_marked_at=None
    ).values_list("id", flat=True)
    marked = 0
    for activity_id in due:
        async with in_transaction():
            if await Activity.filter(id=activity_id, no_shows_marked_at=None).update(
                no_shows_marked_at=now
            ):
                marked += await Booking.filter(activity_id=activity_id, status="confirmed").update(
                    status="no_show"
                )
    return marked
