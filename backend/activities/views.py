"""What the activities services return when one ORM object does not say enough: an activity
with what a visitor sees of its state, a booking with its place in line, a draw's record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.activities.models import Activity, Booking
from backend.core.clock import clock

AUDIENCE_FIELDS = {
    "resident": "for_residents",
    "party_member": "for_party_members",
    "worker": "for_workers",
}
# A booking's status as people read it (pages and the sign-up sheet).
STATUS_NAMES = {
    "entered": "待抽签",
    "confirmed": "报名成功",
    "waitlisted": "候补中",
    "cancelled": "已取消",
    "not_drawn": "未中签",
    "attended": "已签到",
    "no_show": "未到场",
}


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


@dataclass
class ActivityView:
    """An activity with its audience limits and what a visitor sees of its state."""

    activity: Activity
    building_ids: list[int]
    community_ids: list[int]
    booking_state: str

    @classmethod
    def of(cls, activity: Activity, now: datetime | None = None) -> ActivityView:
        return cls(
            activity,
            list(activity.building_ids),
            list(activity.community_ids),
            booking_state(activity, now),
        )

    @property
    def audience(self) -> list[str]:
        return [k for k, f in AUDIENCE_FIELDS.items() if getattr(self.activity, f)]

    @property
    def seats_left(self) -> int:
        return max(0, self.activity.capacity - self.activity.booked)

    @property
    def waitlist_left(self) -> int:
        return max(0, self.activity.waitlist_capacity - self.activity.waitlisted)


def activity_views(activities: list[Activity]) -> list[ActivityView]:
    """The views of `activities`, all as of one moment."""
    now = clock.now()
    return [ActivityView.of(a, now) for a in activities]


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


@dataclass
class CheckinCode:
    """The rotating check-in code on the staff's screen, the link its QR code holds, and
    when it rotates."""

    code: str
    expires_at: datetime
    url: str
