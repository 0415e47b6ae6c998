"""Activities and bookings: seats, waitlists, draws, quotas, attendance and the notices they send.

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

import asyncio
import hashlib
import logging
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import gate
from backend.activities.exceptions import (
    ActivityCancelled,
    AlreadyBooked,
    AttendanceNotOpen,
    BookingClosed,
    BookingNotOpen,
    BookingsExist,
    CancelDeadlinePassed,
    CheckinClosed,
    LimitReached,
    NoShowBlocked,
    NotBooked,
    NotCancellable,
    NotEligible,
    NotNoShow,
    SoldOut,
)
from backend.activities.models import (
    CANCELLABLE_STATUSES,
    Activity,
    ActivityBuilding,
    Booking,
    BookingQuota,
)
from backend.activities.schemas import ActivityIn, ActivityPatch
from backend.core import checkin
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.db import is_postgres
from backend.core.errors import Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import decrypt_field, mask_name, mask_phone
from backend.core.text import clean_text
from backend.orgs.models import Building, Community
from backend.points import service as points_service

log = logging.getLogger("linli.activities")

POINTS_SOURCE = "activity"
# Check-in opens this long before the start and closes at the end.
CHECKIN_OPENS_BEFORE = timedelta(minutes=30)
REMINDER_BEFORE = timedelta(hours=1)
# Share of seats booked at which an activity counts as in demand and staff are alerted.
DEMAND_SHARE = 0.8

AUDIENCE_FIELDS = {
    "resident": "for_residents",
    "party_member": "for_party_members",
    "worker": "for_workers",
}
MUTABLE_FIELDS = (
    "title",
    "category",
    "description",
    "location",
    "starts_at",
    "ends_at",
    "capacity",
    "waitlist_capacity",
    "booking_opens_at",
    "booking_closes_at",
    "cancel_deadline",
    "points",
    "mode",
    "high_demand",
)
TIME_FIELDS = ("starts_at", "ends_at", "booking_opens_at", "booking_closes_at", "cancel_deadline")
# A change to one of these is news for everyone booked.
NEWSWORTHY_FIELDS = ("starts_at", "ends_at", "location")


# --- views ---


@dataclass
class ActivityView:
    """An activity with its audience limits and what a visitor sees of its state."""

    activity: Activity
    building_ids: list[int]
    community_ids: list[int]
    booking_state: str

    @property
    def audience(self) -> list[str]:
        return [k for k, f in AUDIENCE_FIELDS.items() if getattr(self.activity, f)]

    @property
    def seats_left(self) -> int:
        return max(0, self.activity.capacity - self.activity.booked)

    @property
    def waitlist_left(self) -> int:
        return max(0, self.activity.waitlist_capacity - self.activity.waitlisted)


@dataclass
class BookingView:
    """A booking with its live waitlist position (and the activity or person when asked for)."""

    booking: Booking
    waitlist_position: int | None
    activity: Activity | None = None
    nickname: str | None = None
    phone: str | None = None


@dataclass
class DrawEntry:
    rank: int
    booking_id: int
    user_id: int
    nickname: str
    ticket: str
    status: str


@dataclass
class DrawRecord:
    """What staff show residents: the seed (after the draw), its hash, and the drawn order."""

    activity_id: int
    seed_hash: str | None
    seed: str | None
    drawn_at: datetime | None
    entries: list[DrawEntry]


def booking_state(activity: Activity, now: datetime | None = None) -> str:
    """not_open / open / closed for this moment (a cancelled or drawn activity is closed)."""
    now = now or clock.now()
    if activity.status != "published" or activity.drawn_at is not None:
        return "closed"
    if now < activity.booking_opens_at:
        return "not_open"
    if now < activity.booking_closes_at:
        return "open"
    return "closed"


def _views(activities: list[Activity]) -> list[ActivityView]:
    now = clock.now()
    return [
        ActivityView(a, list(a.building_ids), list(a.community_ids), booking_state(a, now))
        for a in activities
    ]


def _view(activity: Activity) -> ActivityView:
    return _views([activity])[0]


async def _load(activity_id: int) -> Activity:
    activity = await Activity.get_or_none(id=activity_id) if may_exist(activity_id) else None
    if activity is None:
        raise NotFound("活动不存在")
    return activity


async def _load_for_staff(actor: User, activity_id: int) -> Activity:
    activity = await _load(activity_id)
    await accounts_service.require_staff_of(actor, activity.community_id)
    return activity


# --- staff: create, edit, cancel ---


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# (label, min length, max length = the column's, multiline) of each text staff type.
TEXT_FIELDS = {
    "title": ("活动名称", 2, 64, False),
    "location": ("地点", 0, 128, False),
    "description": ("介绍", 0, 2000, True),
}


def _clean_texts(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    for field, (label, shortest, longest, multiline) in TEXT_FIELDS.items():
        if values.get(field) is None:
            continue
        try:
            values[field] = clean_text(
                values[field],
                field=field,
                label=label,
                min_length=shortest,
                max_length=longest,
                multiline=multiline,
            )
        except Invalid as exc:
            errors.update(exc.fields or {})
    if errors:
        raise Invalid(fields=errors)


def _check_times(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "结束时间须晚于开始时间"
    if values["booking_closes_at"] <= values["booking_opens_at"]:
        errors["booking_closes_at"] = "报名截止须晚于报名开始"
    if values["booking_closes_at"] > values["starts_at"]:
        errors["booking_closes_at"] = "报名须在活动开始前截止"
    if values["cancel_deadline"] > values["starts_at"]:
        errors["cancel_deadline"] = "取消截止须不晚于活动开始"
    if errors:
        raise Invalid(fields=errors)


async def _check_targets(building_ids: Iterable[int], community_ids: Iterable[int]) -> None:
    errors: dict[str, str] = {}
    building_ids, community_ids = set(building_ids), set(community_ids)
    if building_ids and await Building.filter(id__in=building_ids).count() != len(building_ids):
        errors["building_ids"] = "楼宇不存在"
    if community_ids and await Community.filter(id__in=community_ids).count() != len(community_ids):
        errors["community_ids"] = "社区不存在"
    if errors:
        raise Invalid(fields=errors)


def _audience_columns(audience: Iterable[str]) -> dict[str, bool]:
    chosen = set(audience)
    return {column: key in chosen for key, column in AUDIENCE_FIELDS.items()}


def _new_seed() -> tuple[str, str]:
    seed = secrets.token_hex(16)
    return seed, hashlib.sha256(seed.encode()).hexdigest()


async def _set_buildings(activity_id: int, building_ids: list[int]) -> None:
    await ActivityBuilding.filter(activity_id=activity_id).delete()
    await ActivityBuilding.bulk_create(
        [ActivityBuilding(activity_id=activity_id, building_id=b) for b in building_ids]
    )


async def create_activity(*, actor: User, data: ActivityIn) -> ActivityView:
    """Publish an activity in a community the actor is staff of (times checked for order)."""
    if not await Community.exists(id=data.community_id):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, data.community_id)
    values = {f: getattr(data, f) for f in MUTABLE_FIELDS}
    _clean_texts(values)
    for field in TIME_FIELDS:
        values[field] = _utc(values[field])
    _check_times(values)
    building_ids, community_ids = sorted(set(data.building_ids)), sorted(set(data.community_ids))
    await _check_targets(building_ids, community_ids)
    seed, seed_hash = _new_seed() if data.mode == "draw" else (None, None)
    now = clock.now()
    async with in_transaction():
        activity = await Activity.create(
            **values,
            **_audience_columns(data.audience),
            building_ids=building_ids,
            community_ids=community_ids,
            community_id=data.community_id,
            draw_seed=seed,
            draw_seed_hash=seed_hash,
            created_by_id=actor.id,
            created_at=now,
            updated_at=now,
        )
        await _set_buildings(activity.id, building_ids)
    log.info("activity %s created by user %s", activity.id, actor.id)
    return _view(activity)


async def update_activity(*, actor: User, activity_id: int, patch: ActivityPatch) -> ActivityView:
    """Change an activity: never below the places already taken, new seats go to the waitlist
    in order, and a change of time or place tells everyone booked once."""
    changes = patch.model_dump(exclude_unset=True)
    await _load_for_staff(actor, activity_id)
    audience = changes.pop("audience", None)
    missing = [k for k, v in changes.items() if v is None]
    if missing:
        raise Invalid(fields=dict.fromkeys(missing, "不能为空"))
    _clean_texts(changes)
    for field in TIME_FIELDS:
        if field in changes:
            changes[field] = _utc(changes[field])
    for field in ("building_ids", "community_ids"):
        if field in changes:
            changes[field] = sorted(set(changes[field]))
    await _check_targets(changes.get("building_ids", ()), changes.get("community_ids", ()))
    now = clock.now()
    async with in_transaction():
        # NO KEY: new bookings' foreign-key checks (KEY SHARE) need not wait for an edit.
        activity = await Activity.filter(id=activity_id).select_for_update(no_key=True).get()
        if activity.status != "published":
            raise ActivityCancelled("活动已取消，不能再修改")
        merged = {f: changes.get(f, getattr(activity, f)) for f in MUTABLE_FIELDS}
        _check_times(merged)
        errors: dict[str, str] = {}
        if merged["capacity"] < activity.booked:
            errors["capacity"] = f"已有 {activity.booked} 人报名成功，名额不能少于此数"
        if merged["waitlist_capacity"] < activity.waitlisted:
            errors["waitlist_capacity"] = f"已有 {activity.waitlisted} 人候补，候补名额不能少于此数"
        if errors:
            raise Invalid(fields=errors)
        if merged["mode"] != activity.mode:
            if activity.booked or activity.waitlisted or activity.entries:
                raise BookingsExist()
            if merged["mode"] == "draw":
                changes["draw_seed"], changes["draw_seed_hash"] = _new_seed()
        newsworthy = any(
            f in changes and changes[f] != getattr(activity, f) for f in NEWSWORTHY_FIELDS
        )
        values = dict(changes, updated_at=now)
        if audience is not None:
            values.update(_audience_columns(audience))
        if newsworthy:
            values["revision"] = F("revision") + 1
        await Activity.filter(id=activity_id).update(**values)
        if "building_ids" in changes:
            await _set_buildings(activity_id, changes["building_ids"])
        activity = await Activity.get(id=activity_id)
        if newsworthy:
            await _notify_change_in_tx(activity)
        if activity.mode == "first_come" or activity.drawn_at is not None:
            await _promote_in_tx(activity_id, now)
    await gate.forget(activity_id)
    return _view(await Activity.get(id=activity_id))


async def cancel_activity(*, actor: User, activity_id: int, reason: str = "") -> ActivityView:
    """Cancel an activity: every live booking is cancelled and its person told, exactly once."""
    await _load_for_staff(actor, activity_id)
    reason = clean_text(reason, field="reason", label="取消原因", max_length=200)
    now = clock.now()
    async with in_transaction():
        changed = await Activity.filter(id=activity_id, status="published").update(
            status="cancelled", cancel_reason=reason, updated_at=now
        )
        if changed:
            # The row lock is held: every booking that took a place has committed.
            activity = await Activity.get(id=activity_id)
            live = await Booking.filter(
                activity_id=activity_id, status__in=CANCELLABLE_STATUSES
            ).order_by("user_id")
            await _release_quotas_in_tx(live)
            await Booking.filter(id__in=[b.id for b in live]).update(
                status="cancelled", live_key=None, quota_key=None, cancelled_at=now
            )
            for booking in live:
                await _tell_booker(booking, activity, "cancelled", "activity-cancelled")
    await gate.forget(activity_id)
    return _view(await Activity.get(id=activity_id))


# --- reading ---


async def get_activity(*, activity_id: int) -> ActivityView:
    """One activity as the public sees it (NotFound otherwise)."""
    return _view(await _load(activity_id))


async def list_activities(
    *,
    page: PageRequest,
    community_id: int | None = None,
    upcoming: bool = False,
    category: str | None = None,
    building_id: int | None = None,
) -> Page[ActivityView]:
    """Activities in id order; `upcoming` keeps published ones not yet over, `building_id`
    those open to that building's office workers."""
    query = Activity.all()
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if upcoming:
        query = query.filter(status="published", ends_at__gt=clock.now())
    if category is not None:
        query = query.filter(category=category)
    if building_id is not None:
        limited = Subquery(ActivityBuilding.all().values("activity_id"))
        listed = Subquery(ActivityBuilding.filter(building_id=building_id).values("activity_id"))
        query = query.filter(for_workers=True).filter(Q(id__in=listed) | ~Q(id__in=limited))
    result = await paginate(query, page)
    return Page(items=_views(result.items), next_cursor=result.next_cursor)


async def _position(booking: Booking) -> int | None:
    if booking.status != "waitlisted" or booking.waitlist_ticket is None:
        return None
    return await Booking.filter(
        activity_id=booking.activity_id,
        status="waitlisted",
        waitlist_ticket__lte=booking.waitlist_ticket,
    ).count()


async def _booking_view(booking: Booking, activity: Activity | None = None) -> BookingView:
    return BookingView(booking, await _position(booking), activity)


async def get_my_booking(*, user: User, activity_id: int) -> BookingView | None:
    """The user's live booking of this activity, else their latest one, else None."""
    booking = await Booking.get_or_none(live_key=f"{activity_id}:{user.id}")
    if booking is None:
        booking = (
            await Booking.filter(activity_id=activity_id, user_id=user.id).order_by("-id").first()
        )
    return None if booking is None else await _booking_view(booking)


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
        items=[await _booking_view(b, activities[b.activity_id]) for b in result.items],
        next_cursor=result.next_cursor,
    )


async def _attendees(bookings: list[Booking]) -> list[BookingView]:
    users = {u.id: u for u in await User.filter(id__in={b.user_id for b in bookings})}
    views = []
    for booking in bookings:
        user = users[booking.user_id]
        view = await _booking_view(booking)
        view.nickname = user.nickname
        view.phone = mask_phone(decrypt_field(user.phone_encrypted))
        views.append(view)
    return views


async def list_activity_bookings(
    *, actor: User, activity_id: int, page: PageRequest, status: str | None = None
) -> Page[BookingView]:
    """Staff: the activity's bookings in the order they came, with attendance."""
    await _load_for_staff(actor, activity_id)
    query = Booking.filter(activity_id=activity_id)
    if status is not None:
        query = query.filter(status=status)
    result = await paginate(query, page)
    return Page(items=await _attendees(result.items), next_cursor=result.next_cursor)


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
        or activity.booked >= math.ceil(activity.capacity * DEMAND_SHARE)
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


# --- booking ---


def _unguarded() -> bool:
    settings = get_settings()
    return settings.test_unguarded_booking and settings.env == "dev"


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
    if _unguarded():
        # TEST ONLY (LINLI_TEST_UNGUARDED_BOOKING): the race the guard prevents, for the
        # control case of the concurrency test. The pause widens the window between the read
        # and the write so the control does not depend on scheduling luck.
        row = await Activity.filter(_open_now(now), id=activity_id).first()
        if row is None or row.booked >= row.capacity:
            return None
        await asyncio.sleep(0.005)
        await Activity.filter(id=activity_id).update(booked=row.booked + 1)
        return row.booked + 1
    return await _returning(_TAKE_SEAT, activity_id, now, now)


def _quota_key(activity: Activity) -> tuple[str, int] | None:
    settings = get_settings()
    limit = settings.activity_monthly_limits.get(activity.category)
    if limit is None:
        return None
    month = activity.starts_at.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m")
    return f"{activity.category}|{month}", limit


async def _hold_quota_in_tx(user_id: int, activity: Activity) -> None:
    quota = _quota_key(activity)
    if quota is None:
        return
    key, limit = quota
    if limit > 0 and await _returning(_HOLD_QUOTA, user_id, key, limit) is not None:
        return
    raise LimitReached(f"本月“{activity.category}”类活动每人最多报名 {limit} 次，您的次数已用完")


async def _release_quotas_in_tx(bookings: Iterable[Booking]) -> None:
    # Sorted, so two transactions releasing the same people's counters lock them in one order.
    for booking in sorted(bookings, key=lambda b: (b.user_id, b.quota_key or "")):
        if booking.quota_key:
            await BookingQuota.filter(
                user_id=booking.user_id, key=booking.quota_key, used__gt=0
            ).update(used=F("used") - 1)


def _booking_context(activity: Activity, status: str) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "activity_title": activity.title,
        "starts_at": activity.starts_at.isoformat(),
        "location": activity.location or "详见活动页面",
        "status": status,
    }


def _notice_key(booking: Booking, event: str) -> str:
    return f"booking:{booking.id}:{event}"


async def _tell_booker(booking: Booking, activity: Activity, status: str, event: str) -> None:
    await enqueue(
        template_key="booking",
        context=_booking_context(activity, status),
        dedupe_key=_notice_key(booking, event),
        user_id=booking.user_id,
    )


async def _alert_staff_in_tx(activity: Activity, booked: int) -> None:
    thresholds = {math.ceil(activity.capacity * DEMAND_SHARE): 80, activity.capacity: 100}
    share = thresholds.get(booked)
    if share is None:
        return
    context = {
        "title": f"报名已达{share}%：{activity.title}",
        "summary": f"已报名 {booked}/{activity.capacity} 人",
        "body": f"活动“{activity.title}”已报名 {booked}/{activity.capacity} 人"
        + ("，名额已满。" if share == 100 else "。"),
        "url": f"/h5/activities/{activity.id}/attendance",
    }
    if activity.created_by_id is not None:
        await enqueue(
            template_key="notice",
            context=context,
            dedupe_key=f"activity:{activity.id}:fill{share}:user:{activity.created_by_id}",
            user_id=activity.created_by_id,
        )
    robot = await Community.get(id=activity.community_id).values_list("wecom_robot_key", flat=True)
    if robot:
        await enqueue(
            template_key="notice",
            context=context,
            dedupe_key=f"activity:{activity.id}:fill{share}:wecom",
            channel="wecom",
            recipient=robot,
        )


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
    await _tell_booker(booking, activity, "confirmed", "confirmed")
    booked = await _take_seat_in_tx(activity.id, now)
    if booked is not None:
        await _alert_staff_in_tx(activity, booked)
        return BookingView(booking, None, activity)
    ticket = await _returning(_TAKE_WAITLIST_PLACE, activity.id, now, now)
    if ticket is None:
        _check_window(await Activity.get(id=activity.id), now)
        raise SoldOut()
    await OutboxMessage.filter(dedupe_key=_notice_key(booking, "confirmed")).delete()
    await Booking.filter(id=booking.id).update(
        status="waitlisted", waitlist_ticket=ticket, confirmed_at=None
    )
    booking.status, booking.waitlist_ticket, booking.confirmed_at = "waitlisted", ticket, None
    await _tell_booker(booking, activity, "waitlisted", "waitlisted")
    return BookingView(booking, await _position(booking), activity)


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


async def _check_not_blocked(user: User, activity: Activity) -> None:
    if not in_demand(activity):
        return
    until = await booking_blocked_until(user_id=user.id)
    if until is not None:
        local = until.astimezone(ZoneInfo(get_settings().timezone))
        raise NoShowBlocked(f"近期多次报名未到场，{local.month}月{local.day}日前暂不能报名热门活动")


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
        activity = await _load(activity_id)
        now = clock.now()
        _check_window(activity, now)
        view = _view(activity)
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


async def _promote_in_tx(activity_id: int, now: datetime) -> int:
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
        await _tell_booker(first, activity, "promoted", "promoted")
        await _alert_staff_in_tx(activity, activity.booked)
        promoted += 1


class _StatusChanged(Exception):
    """The booking changed between reading it and locking it (rolls the transaction back)."""


async def _cancel_in_tx(booking: Booking, activity: Activity, now: datetime) -> None:
    await Activity.filter(id=activity.id).select_for_update(no_key=True).first()
    await _release_quotas_in_tx([booking])
    cancelled = await Booking.filter(id=booking.id, status=booking.status).update(
        status="cancelled", live_key=None, quota_key=None, cancelled_at=now
    )
    if not cancelled:
        raise _StatusChanged()
    if booking.status == "confirmed":
        await Activity.filter(id=activity.id).update(booked=F("booked") - 1)
        await _promote_in_tx(activity.id, now)
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
        activity = await _load(booking.activity_id)
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


# --- draw mode ---


def draw_ticket(seed: str, user_id: int) -> str:
    """An entry's lottery ticket: anyone with the seed can recompute and sort them."""
    return hashlib.sha256(f"{seed}:{user_id}".encode()).hexdigest()


def draw_order(seed: str, user_ids: Iterable[int]) -> list[int]:
    """The drawn order of `user_ids` for `seed` (same seed and entrants, same order)."""
    return sorted(set(user_ids), key=lambda uid: (draw_ticket(seed, uid), uid))


async def draw_activity(*, activity_id: int) -> bool:
    """Run the draw of a closed draw-mode activity once: seats then waitlist in drawn order,
    the rest not drawn, everyone told. False when there was nothing to draw (yet)."""
    now = clock.now()
    async with in_transaction():
        claimed = await Activity.filter(
            id=activity_id,
            mode="draw",
            status="published",
            drawn_at=None,
            booking_closes_at__lte=now,
        ).update(drawn_at=now)
        if not claimed:
            return False
        activity = await Activity.get(id=activity_id)
        entries = {
            b.user_id: b for b in await Booking.filter(activity_id=activity_id, status="entered")
        }
        order = draw_order(activity.draw_seed or "", entries)
        seats, waitlist = activity.capacity, activity.waitlist_capacity
        losers = [entries[uid] for uid in order[seats + waitlist :]]
        await _release_quotas_in_tx(losers)
        for rank, user_id in enumerate(order, start=1):
            booking = entries[user_id]
            if rank <= seats:
                await Booking.filter(id=booking.id).update(
                    status="confirmed", draw_rank=rank, confirmed_at=now
                )
                await _tell_booker(booking, activity, "confirmed", "drawn")
            elif rank <= seats + waitlist:
                await Booking.filter(id=booking.id).update(
                    status="waitlisted", draw_rank=rank, waitlist_ticket=rank - seats
                )
                await _tell_booker(booking, activity, "waitlisted", "drawn")
            else:
                await Booking.filter(id=booking.id).update(
                    status="not_drawn", draw_rank=rank, live_key=None, quota_key=None
                )
                await enqueue(
                    template_key="notice",
                    context={
                        "title": f"未中签：{activity.title}",
                        "summary": "感谢参与，欢迎报名其他活动",
                        "body": f"“{activity.title}”报名人数较多，经公开抽签本次未中签。",
                        "url": f"/h5/activities/{activity.id}",
                    },
                    dedupe_key=f"booking:{booking.id}:drawn",
                    user_id=booking.user_id,
                )
        confirmed = min(seats, len(order))
        waitlisted = min(waitlist, max(0, len(order) - seats))
        await Activity.filter(id=activity_id).update(
            booked=confirmed,
            waitlisted=waitlisted,
            waitlist_issued=waitlisted,
            entries=0,
        )
    log.info("activity %s drawn: %s entries", activity_id, len(order))
    return True


async def run_due_draws() -> int:
    """Draw every draw-mode activity whose booking has closed (safe to run anywhere, twice)."""
    due = await Activity.filter(
        mode="draw", status="published", drawn_at=None, booking_closes_at__lte=clock.now()
    ).values_list("id", flat=True)
    drawn = 0
    for activity_id in due:
        drawn += await draw_activity(activity_id=activity_id)
    return drawn


async def get_draw(*, actor: User, activity_id: int) -> DrawRecord:
    """Staff: the draw's seed hash, and after the draw the seed and the ordered entries."""
    activity = await _load_for_staff(actor, activity_id)
    entries: list[DrawEntry] = []
    if activity.drawn_at is not None:
        drawn = await Booking.filter(activity_id=activity_id, draw_rank__not_isnull=True).order_by(
            "draw_rank"
        )
        users = {u.id: u for u in await User.filter(id__in={b.user_id for b in drawn})}
        entries = [
            DrawEntry(
                rank=b.draw_rank,
                booking_id=b.id,
                user_id=b.user_id,
                nickname=mask_name(users[b.user_id].nickname),
                ticket=draw_ticket(activity.draw_seed or "", b.user_id),
                status=b.status,
            )
            for b in drawn
        ]
    return DrawRecord(
        activity_id=activity.id,
        seed_hash=activity.draw_seed_hash,
        seed=activity.draw_seed if activity.drawn_at else None,
        drawn_at=activity.drawn_at,
        entries=entries,
    )


# --- attendance ---


def checkin_subject(activity_id: int) -> str:
    return f"activity:{activity_id}"


def checkin_url(activity_id: int, code: str) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/h5/activities/{activity_id}/checkin?code={code}"


async def issue_checkin_code(*, actor: User, activity_id: int) -> tuple[str, datetime]:
    """Staff: the rotating check-in code valid now, and when it rotates."""
    activity = await _load_for_staff(actor, activity_id)
    if activity.status != "published":
        raise ActivityCancelled()
    return checkin.current_code(subject=checkin_subject(activity_id))


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
    entry = await points_service.award_by_rule_in_tx(
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
    activity = await _load(activity_id)
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


async def _staff_booking(actor: User, booking_id: int) -> tuple[Booking, Activity]:
    booking = await Booking.get_or_none(id=booking_id) if may_exist(booking_id) else None
    if booking is None:
        raise NotFound("报名记录不存在")
    return booking, await _load_for_staff(actor, booking.activity_id)


async def mark_attendance(*, actor: User, booking_id: int, attended: bool) -> BookingView:
    """Staff: mark a seat-holder attended (points paid once) or absent, after the start."""
    booking, activity = await _staff_booking(actor, booking_id)
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
    return (await _attendees([await Booking.get(id=booking.id)]))[0]


async def excuse_no_show(*, actor: User, booking_id: int) -> BookingView:
    """Staff: excuse a no-show, so it no longer counts against the person."""
    booking, _ = await _staff_booking(actor, booking_id)
    async with in_transaction():
        excused = await Booking.filter(id=booking.id, status="no_show", excused_at=None).update(
            excused_at=clock.now(), excused_by_id=actor.id
        )
        if not excused and booking.status != "no_show":
            raise NotNoShow()
    return (await _attendees([await Booking.get(id=booking.id)]))[0]


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


# --- notices ---


async def _notify_change_in_tx(activity: Activity) -> None:
    local = activity.starts_at.astimezone(ZoneInfo(get_settings().timezone))
    when = f"{local.month}月{local.day}日 {local:%H:%M}"
    place = activity.location or "详见活动页面"
    people = await Booking.filter(
        activity_id=activity.id, status__in=CANCELLABLE_STATUSES
    ).values_list("user_id", flat=True)
    for user_id in people:
        await enqueue(
            template_key="notice",
            context={
                "title": f"活动变更：{activity.title}",
                "summary": "时间或地点有调整，请查看",
                "body": f"“{activity.title}”调整为 {when}，地点：{place}。",
                "url": f"/h5/activities/{activity.id}",
            },
            dedupe_key=f"activity:{activity.id}:rev{activity.revision}:user:{user_id}",
            user_id=user_id,
        )


async def send_reminders() -> int:
    """Remind every confirmed booker once, within the hour before the start; returns how many."""
    now = clock.now()
    due = await Booking.filter(
        status="confirmed",
        reminded_at=None,
        activity__status="published",
        activity__starts_at__gt=now,
        activity__starts_at__lte=now + REMINDER_BEFORE,
    ).select_related("activity")
    sent = 0
    for booking in due:
        activity = booking.activity
        async with in_transaction():
            if not await Booking.filter(id=booking.id, reminded_at=None).update(reminded_at=now):
                continue  # another bot process got there first
            await enqueue(
                template_key="reminder",
                context={
                    "activity_id": activity.id,
                    "activity_title": activity.title,
                    "starts_at": activity.starts_at.isoformat(),
                    "location": activity.location or "详见活动页面",
                },
                dedupe_key=f"booking:{booking.id}:reminder",
                user_id=booking.user_id,
            )
        sent += 1
    return sent


# --- export ---


STATUS_NAMES = {
    "entered": "待抽签",
    "confirmed": "报名成功",
    "waitlisted": "候补中",
    "cancelled": "已取消",
    "not_drawn": "未中签",
    "attended": "已签到",
    "no_show": "未到场",
}


async def export_bookings_xlsx(*, actor: User, activity_id: int) -> tuple[str, bytes]:
    """Staff: (file name, .xlsx bytes) of the activity's sign-ups and attendance."""
    # Imported here: openpyxl is large, and most app processes never export anything.
    from backend.core.xlsx import Spreadsheet

    activity = await _load_for_staff(actor, activity_id)
    bookings = await Booking.filter(activity_id=activity_id).order_by("id")
    starts = activity.starts_at.astimezone(ZoneInfo(get_settings().timezone))
    book = Spreadsheet()
    sheet = book.sheet(
        "报名与签到",
        caption=" ".join(
            part for part in (activity.title, f"{starts:%Y-%m-%d %H:%M}", activity.location) if part
        ),
        header=["序号", "昵称", "手机号", "状态", "候补位次", "报名时间", "签到时间", "免责"],
        widths=[8, 16, 14, 10, 10, 18, 18, 8],
    )
    # Phones stay masked: at the door staff match a person by nickname and the last four
    # digits, and the file travels further than the page.
    for number, view in enumerate(await _attendees(bookings), start=1):
        b = view.booking
        sheet.append(
            [
                number,
                view.nickname,
                view.phone or "",
                STATUS_NAMES.get(b.status, b.status),
                view.waitlist_position,
                b.created_at,
                b.checked_in_at,
                "是" if b.excused_at else "",
            ]
        )
    return f"activity-{activity.id}-bookings.xlsx", book.to_bytes()
