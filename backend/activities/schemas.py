"""Request and response bodies of the activities API (shapes from API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from backend.activities.models import Booking
from backend.activities.views import ActivityView, BookingView, CheckinCode, DrawRecord
from backend.core.ids import MAX_ORG_ID
from backend.core.pagination import OutModel
from backend.core.text import CONTROL_MESSAGE, InModel, has_forbidden

Category = Literal["午间一小时", "文化", "健康", "助老", "亲子", "志愿", "党建", "其他"]
Audience = Literal["resident", "party_member", "worker"]
Mode = Literal["first_come", "draw"]
BookingState = Literal["not_open", "open", "closed"]
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]


def _one_line(value: str) -> str:
    # InModel lets tab and newline through; a name or a place is one line.
    if has_forbidden(value, multiline=False):
        raise PydanticCustomError("text_control", CONTROL_MESSAGE)
    return value


# The limits of the texts staff type, once (the columns' lengths, models.py). Stripped, so a
# title of spaces is as short as it looks; the length before the one-line check, so a length
# error reads as one.
_Stripped = StringConstraints(strip_whitespace=True)
Title = Annotated[str, _Stripped, Field(min_length=2, max_length=64), AfterValidator(_one_line)]
Location = Annotated[str, _Stripped, Field(max_length=128), AfterValidator(_one_line)]
Description = Annotated[str, _Stripped, Field(max_length=2000)]


class ActivityFields(InModel):
    """Everything staff set on an activity; create requires all but the optional ones."""

    title: Title = Field(title="活动名称")
    category: Category = Field(title="类别")
    description: Description = Field(default="", title="介绍")
    location: Location = Field(default="", title="地点")
    starts_at: AwareDatetime = Field(title="开始时间")
    ends_at: AwareDatetime = Field(title="结束时间")
    capacity: int = Field(ge=1, le=10000, title="名额")
    waitlist_capacity: int = Field(default=0, ge=0, le=10000, title="候补名额")
    booking_opens_at: AwareDatetime = Field(title="报名开始")
    booking_closes_at: AwareDatetime = Field(title="报名截止")
    cancel_deadline: AwareDatetime = Field(title="取消截止")
    audience: list[Audience] = Field(min_length=1, max_length=3, title="面向人群")
    building_ids: list[OrgId] = Field(
        default_factory=list,
        max_length=50,
        title="限定楼宇",
        description="只限这些楼宇的上班族（空：不限楼宇）",
    )
    community_ids: list[OrgId] = Field(
        default_factory=list,
        max_length=50,
        title="开放社区",
        description="居民、党员可来自这些社区（空：仅本社区）",
    )
    points: int = Field(default=0, ge=0, le=1000, title="签到积分", description="签到后获得的积分")
    mode: Mode = Field(
        default="first_come",
        title="报名方式",
        description="first_come 先到先得；draw 报名截止后抽签",
    )
    high_demand: bool = Field(
        default=False, title="热门活动", description="热门活动：多次爽约者暂不能报名"
    )


class ActivityIn(ActivityFields):
    community_id: OrgId = Field(title="社区")


class ActivityPatch(InModel):
    """Only the fields sent are changed."""

    title: Title | None = Field(default=None, title="活动名称")
    category: Category | None = Field(default=None, title="类别")
    description: Description | None = Field(default=None, title="介绍")
    location: Location | None = Field(default=None, title="地点")
    starts_at: AwareDatetime | None = Field(default=None, title="开始时间")
    ends_at: AwareDatetime | None = Field(default=None, title="结束时间")
    capacity: int | None = Field(default=None, ge=1, le=10000, title="名额")
    waitlist_capacity: int | None = Field(default=None, ge=0, le=10000, title="候补名额")
    booking_opens_at: AwareDatetime | None = Field(default=None, title="报名开始")
    booking_closes_at: AwareDatetime | None = Field(default=None, title="报名截止")
    cancel_deadline: AwareDatetime | None = Field(default=None, title="取消截止")
    audience: list[Audience] | None = Field(
        default=None, min_length=1, max_length=3, title="面向人群"
    )
    building_ids: list[OrgId] | None = Field(default=None, max_length=50, title="限定楼宇")
    community_ids: list[OrgId] | None = Field(default=None, max_length=50, title="开放社区")
    points: int | None = Field(default=None, ge=0, le=1000, title="签到积分")
    mode: Mode | None = Field(default=None, title="报名方式")
    high_demand: bool | None = Field(default=None, title="热门活动")


class CancelActivityIn(InModel):
    reason: str = Field(default="", max_length=200, title="取消原因")


class ActivityOut(OutModel):
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


class BookingOut(OutModel):
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

    @classmethod
    def of(cls, booking: Booking) -> CancelledOut:
        return cls(id=booking.id, status="cancelled")


class CheckinCodeOut(BaseModel):
    code: str
    expires_at: datetime
    url: str = Field(description="二维码里的签到链接")

    @classmethod
    def of(cls, code: CheckinCode) -> CheckinCodeOut:
        return cls(code=code.code, expires_at=code.expires_at, url=code.url)


class CheckinIn(InModel):
    code: str = Field(min_length=1, max_length=16, title="签到码")


class CheckinOut(BaseModel):
    status: Literal["attended"]
    points_awarded: int

    @classmethod
    def of(cls, points_awarded: int) -> CheckinOut:
        """A check-in that went through, with the points this call paid (0 on a repeat)."""
        return cls(status="attended", points_awarded=points_awarded)


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
