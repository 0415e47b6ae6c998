"""What the party services return when one ORM object does not say enough, and how its
values read to people (hours, opening hours, masked phones, status names)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from backend.core.pagination import Page
from backend.core.security import decrypt_field, mask_phone
from backend.party.models import (
    REGISTRATION_STATUS_NAMES,
    PartyRegistration,
    ServicePost,
    ServiceRecord,
)

# The members' party pages (links in notices and QR codes).
PARTY_URL = "/h5/party"


def hours(minutes: int) -> float:
    """Minutes as hours with one decimal, as shown to people."""
    return round(minutes / 60, 1)


def clock_text(minutes: int) -> str:
    """Minutes after local midnight as HH:MM (1440 is 24:00)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def opening_hours(post: ServicePost) -> str:
    """A post's service hours as shown to people, e.g. 07:00–21:00."""
    return f"{clock_text(post.open_from)}–{clock_text(post.open_until)}"


def status_name(status: str) -> str:
    return REGISTRATION_STATUS_NAMES.get(status, status)


def registration_phone(registration: PartyRegistration) -> str | None:
    """The registration's phone masked (138****1234)."""
    return mask_phone(decrypt_field(registration.phone_encrypted))


def registration_org_phone(registration: PartyRegistration) -> str | None:
    return mask_phone(decrypt_field(registration.party_org_phone_encrypted))


@dataclass(frozen=True)
class RosterFilter:
    """Roster search: community, status, a name/unit text or phone, a skill, a work unit."""

    community_id: int | None = None
    status: str | None = None
    q: str | None = None
    skill: str | None = None
    work_unit: str | None = None


@dataclass
class PostView:
    """A post as one viewer sees it: the skills of theirs it wants, whether they hold it."""

    post: ServicePost
    matched_skills: list[str]
    held_by_me: bool

    @property
    def seats_left(self) -> int:
        return max(0, self.post.capacity - self.post.taken)

    @property
    def suggested(self) -> bool:
        return bool(self.matched_skills)


@dataclass(frozen=True)
class CheckinCode:
    code: str
    expires_at: datetime
    url: str


@dataclass
class MyService:
    """A member's credited minutes (all time and this year) and a page of their records."""

    total_minutes: int
    term_minutes: int
    page: Page[ServiceRecord]
    open_record: ServiceRecord | None


@dataclass(frozen=True)
class HoursRow:
    key: int
    name: str
    minutes: int

    @property
    def hours(self) -> float:
        return hours(self.minutes)


@dataclass
class MemberReportRow:
    user_id: int
    name: str
    phone: str | None
    community: str
    work_unit: str
    party_org: str
    status: str
    approved: bool
    posts: list[str]
    minutes: int
    activities: int
    wishes: int

    @property
    def hours(self) -> float:
        return hours(self.minutes)


@dataclass
class UnitReportRow:
    work_unit: str
    party_orgs: list[str]
    members: int
    approved: int
    with_post: int
    minutes: int
    activities: int
    wishes: int

    @property
    def hours(self) -> float:
        return hours(self.minutes)


@dataclass
class PartyReport:
    """The 双报到 report of a local date range: per work unit and per member."""

    start_date: date
    end_date: date
    community: str | None
    units: list[UnitReportRow]
    members: list[MemberReportRow]

    @property
    def total_minutes(self) -> int:
        return sum(m.minutes for m in self.members)

    @property
    def total_hours(self) -> float:
        return hours(self.total_minutes)
