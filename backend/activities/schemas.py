"""Request and response bodies of the activities API (shapes from API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from backend.core.ids import MAX_ORG_ID
from backend.core.text import InModel

if TYPE_CHECKING:
    from backend.activities.service import ActivityView, BookingView, DrawRecord

Category = Literal["午间一小时", "文化", "健康", "助老", "亲子", "志愿", "党建", "其他"]
Audience = Literal["resident", "party_member", "worker"]
Mode = Literal["first_come", "draw"]
BookingState = Literal["not_open", "open", "closed"]
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64)]


class ActivityFields(InModel):
    """Everything staff set on an activity; create requires all but the optional ones."""

    title: Title
    category: Category
    description: str = Field(default="", max_length=2000)
    location: str = Field(default="", max_length=128)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1, le=10000)
    waitlist_capacity: int = Field(default=0, ge=0, le=10000)
    booking_opens_at: AwareDatetime
    booking_closes_at: AwareDatetime
    cancel_deadline: AwareDatetime
    audience: list[Audience] = Field(min_length=1, max_length=3)
    building_ids: list[OrgId] = Field(
        default_factory=list, max_length=50, description="只限这些楼宇的上班族（空：不限楼宇）"
    )
    community_ids: list[OrgId] = Field(
        default_factory=list,
        max_length=50,
        description="居民、党员可来自这些社区（空：仅本社区）",
    )
    points: int = Field(default=0, ge=0, le=1000, description="签到后获得的积分")
    mode: Mode = Field(default="first_come", description="first_come 先到先得；draw 报名截止后抽签")
    high_demand: bool = Field(default=False, description="热门活动：多次爽约者暂不能报名")


class ActivityIn(ActivityFields):
    community_id: OrgId


class ActivityPatch(InModel):
    """Only the fields sent are changed."""

    title: Title | None = None
    category: Category | None = None
    description: str | None = Field(default=None, max_length=2000)
    location: str | None = Field(default=None, max_length=128)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    capacity: int | None = Field(default=None, ge=1, le=10000)
    waitlist_capacity: int | None = Field(default=None, ge=0, le=10000)
    booking_opens_at: AwareDatetime | None = None
    booking_closes_at: AwareDatetime | None = None
    cancel_deadline: AwareDatetime | None = None
    audience: list[Audience] | None = Field(default=None, min_length=1, max_length=3)
    building_ids: list[OrgId] | None = Field(default=None, max_length=50)
    community_ids: list[OrgId] | None = Field(default=None, max_length=50)
    points: int | None = Field(default=None, ge=0, le=1000)
    mode: Mode | None = None
    high_demand: bool | None = None


class CancelActivityIn(InModel):
    reason: str = Field(default="", max_length=200)


class ActivityOut(BaseModel):
    id: int
    community_id: int
    title: str
    category: str
    description: str
    location: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    waitlist_capacity: int
    booking_opens_at: datetime
    booking_closes_at: datetime
    cancel_deadline: datetime
    audience: list[Audience]
    building_ids: list[int]
    community_ids: list[int]
    points: int
    mode: Mode
    high_demand: bool
    status: Literal["published", "cancelled"]
    cancel_reason: str
    booked: int = Field(description="已确认的名额")
    waitlisted: int = Field(description="候补中的人数")
    entries: int = Field(description="抽签模式：已登记抽签的人数")
    seats_left: int
    waitlist_left: int
    booking_state: BookingState
    draw_seed_hash: str | None = Field(description="抽签模式：种子的 SHA-256，抽签前即公开")
    draw_seed: str | None = Field(description="抽签模式：抽签后公开的种子")
    drawn_at: datetime | None

    @classmethod
    def of(cls, view: ActivityView) -> ActivityOut:
        a = view.activity
        return cls(
            id=a.id,
            community_id=a.community_id,
            title=a.title,
            category=a.category,
            description=a.description,
            location=a.location,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            capacity=a.capacity,
            waitlist_capacity=a.waitlist_capacity,
            booking_opens_at=a.booking_opens_at,
            booking_closes_at=a.booking_closes_at,
            cancel_deadline=a.cancel_deadline,
            audience=view.audience,
            building_ids=view.building_ids,
            community_ids=view.community_ids,
            points=a.points,
            mode=a.mode,
            high_demand=a.high_demand,
            status=a.status,
            cancel_reason=a.cancel_reason,
            booked=a.booked,
            waitlisted=a.waitlisted,
            entries=a.entries,
            seats_left=view.seats_left,
            waitlist_left=view.waitlist_left,
            booking_state=view.booking_state,
            draw_seed_hash=a.draw_seed_hash,
            draw_seed=a.draw_seed if a.drawn_at else None,
            drawn_at=a.drawn_at,
        )


BookingStatus = Literal[
    "entered", "confirmed", "waitlisted", "cancelled", "not_drawn", "attended", "no_show"
]


class BookingOut(BaseModel):
    id: int
    activity_id: int
    status: BookingStatus
    waitlist_position: int | None = Field(
        description="候补第几位（从 1 起，按转正顺序）；非候补为 null"
    )
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    checked_in_at: datetime | None
    activity_title: str | None = None
    starts_at: datetime | None = None

    @classmethod
    def of(cls, view: BookingView) -> BookingOut:
        b = view.booking
        return cls(
            id=b.id,
            activity_id=b.activity_id,
            status=b.status,
            waitlist_position=view.waitlist_position,
            created_at=b.created_at,
            confirmed_at=b.confirmed_at,
            cancelled_at=b.cancelled_at,
            checked_in_at=b.checked_in_at,
            activity_title=view.activity.title if view.activity else None,
            starts_at=view.activity.starts_at if view.activity else None,
        )


class AttendeeOut(BookingOut):
    user_id: int
    nickname: str
    phone: str | None = Field(description="脱敏手机号")
    excused_at: datetime | None

    @classmethod
    def of(cls, view: BookingView) -> AttendeeOut:
        base = BookingOut.of(view).model_dump()
        return cls(
            **base,
            user_id=view.booking.user_id,
            nickname=view.nickname or "",
            phone=view.phone,
            excused_at=view.booking.excused_at,
        )


class CancelledOut(BaseModel):
    id: int
    status: Literal["cancelled"]


class CheckinCodeOut(BaseModel):
    code: str
    expires_at: datetime
    url: str = Field(description="二维码里的签到链接")


class CheckinIn(InModel):
    code: str = Field(min_length=1, max_length=16)


class CheckinOut(BaseModel):
    status: Literal["attended"]
    points_awarded: int


class AttendanceIn(InModel):
    status: Literal["attended", "no_show"]


class DrawEntryOut(BaseModel):
    rank: int
    booking_id: int
    user_id: int
    nickname: str = Field(description="脱敏昵称")
    ticket: str = Field(description="SHA-256(种子:用户id)，按它从小到大排序即为抽签顺序")
    status: BookingStatus


class DrawOut(BaseModel):
    activity_id: int
    seed_hash: str | None
    seed: str | None
    drawn_at: datetime | None
    entries: list[DrawEntryOut]

    @classmethod
    def of(cls, record: DrawRecord) -> DrawOut:
        return cls(
            activity_id=record.activity_id,
            seed_hash=record.seed_hash,
            seed=record.seed,
            drawn_at=record.drawn_at,
            entries=[DrawEntryOut(**vars(e)) for e in record.entries],
        )
