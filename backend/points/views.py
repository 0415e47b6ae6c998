"""What the points services return when one ORM object does not say enough (the priced
terms of an earning rule, a statement, a leaderboard), and what a reader is shown of a
reward or a redemption that the row alone does not hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.pagination import Page
from backend.points.models import EarningRule, PointsLedgerEntry, Redemption, Reward

Period = Literal["month", "year"]

VERIFY_PATH = "/h5/points/staff/verify"
PICTURE_PATH = "/api/v1/rewards/{reward_id}/picture"


@dataclass(frozen=True)
class EventType:
    """Something that earns points, with the price used until a street admin sets a rule."""

    key: str
    label: str
    unit: str
    default_points: int


EVENT_STAFF_ADJUSTMENT = "staff_adjustment"
EVENT_TYPES: dict[str, EventType] = {
    e.key: e
    for e in (
        EventType("activity_attended", "参加活动", "次", 10),
        EventType("service_hour", "志愿服务", "小时", 10),
        EventType("wish_fulfilled", "完成微心愿", "个", 10),
        EventType("report_in_approved", "在职党员报到", "次", 50),
        # Staff say the exact amount: only this rule's caps apply to adjustments.
        EventType(EVENT_STAFF_ADJUSTMENT, "工作人员调整", "分", 1),
    )
}


@dataclass(frozen=True)
class RuleTerms:
    """What an award is priced by: a stored rule version, or the built-in default (rule_id None)."""

    event_type: str
    points: int
    multiplier_percent: int = 100
    daily_cap: int | None = None
    monthly_cap: int | None = None
    rule_id: int | None = None
    effective_from: datetime | None = None

    @property
    def label(self) -> str:
        return EVENT_TYPES[self.event_type].label

    def amount_for(self, quantity: int | float | Decimal, base_points: int | None = None) -> int:
        """Points for `quantity` units (rounded half up), with the multiplier applied."""
        per_unit = self.points if base_points is None else base_points
        raw = Decimal(per_unit) * Decimal(str(quantity)) * self.multiplier_percent / 100
        return int(raw.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ExpiringPoints:
    amount: int
    expires_at: datetime


@dataclass
class PointsStatement:
    """A user's balance, what of it expires when, and one page of their ledger, newest first."""

    balance: int
    expiring: list[ExpiringPoints]
    page: Page[PointsLedgerEntry]


@dataclass
class EventRules:
    """An event type's rule now, the versions scheduled to start later, and the past ones."""

    event: EventType
    current: RuleTerms
    upcoming: list[EarningRule]
    history: list[EarningRule]


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    name: str
    points: int
    is_me: bool


@dataclass
class Leaderboard:
    """Who earned the most points in a community or unit over a month or a year."""

    scope: Literal["community", "unit"]
    scope_id: int
    scope_name: str
    period: Period
    start_date: date
    end_date: date  # the last day included
    rows: list[LeaderRow]
    my_points: int
    opted_in: bool


def is_on_sale(reward: Reward, now: datetime | None = None) -> bool:
    """Whether the reward can be redeemed now (active and inside its sale window)."""
    now = now or clock.now()
    return (
        reward.active
        and (reward.on_sale_from is None or reward.on_sale_from <= now)
        and (reward.on_sale_until is None or now < reward.on_sale_until)
    )


def picture_version(picture_at: datetime) -> str:
    """What names one upload of a picture in its address (a new upload, a new address)."""
    return str(int(picture_at.timestamp() * 1000))


def image_url(reward: Reward) -> str:
    """The picture a reader is shown: the uploaded one on this site, else the external
    https:// address staff gave (for the mini-program), else "". The reward must have been
    read through backend.points.rewards, which tells it when its picture changed."""
    if reward.picture_at is None:
        return reward.image_url
    path = PICTURE_PATH.format(reward_id=reward.id)
    return f"{path}?v={picture_version(reward.picture_at)}"


def pickup_url(redemption: Redemption) -> str:
    """What the QR code of a pickup code holds: the 核销 page, with the code filled in."""
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}{VERIFY_PATH}?code={redemption.pickup_code}"
