"""The points API's bodies (`*In`, also built by the H5 forms) and answers (`*Out.of()`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.accounts.models import User
from backend.core.ids import INT32, MAX_ID, MAX_ORG_ID
from backend.core.pagination import OutModel
from backend.core.security import mask_name
from backend.core.text import InModel
from backend.points.models import EarningRule, Redemption, Reward
from backend.points.views import (
    EventRules,
    Leaderboard,
    PointsStatement,
    RuleTerms,
    image_url,
    is_on_sale,
    pickup_url,
)

MAX_ADJUSTMENT = 10_000
# Text limits, here once: the models below bound what arrives, and the services, which
# strip text before they count it, name the same numbers.
REASON_MIN, REASON_MAX = 2, 200
NOTE_MAX = 200
TEXT_LIMITS = {"title": 40, "description": 1000, "pickup_place": 100, "image_url": 500}
# Text whose surrounding blanks are not part of it (the limits count what is left).
Stripped = Annotated[str, StringConstraints(strip_whitespace=True)]


class LedgerEntryOut(OutModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    delta: int = Field(description="正数为获得，负数为消费或过期")
    balance_after: int = Field(description="这笔变动之后的余额")
    source_type: str = Field(
        description="来源：activity_attended、service_hour、wish_fulfilled、reward、"
        "reward_refund、expiry、adjustment …"
    )
    source_id: str
    reason: str
    actor_id: int | None = Field(description="手工调整时操作的工作人员")
    rule_id: int | None = Field(default=None, description="按规则发放时所用的规则版本")
    created_at: datetime


class ExpiringOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    amount: int
    expires_at: datetime = Field(description="这部分积分在此时刻过期（不含）")


class PointsOut(BaseModel):
    balance: int
    expiring: list[ExpiringOut] = Field(
        default_factory=list, description="尚未过期的积分按过期时间分批，最早过期的在前"
    )
    items: list[LedgerEntryOut] = Field(description="积分明细，最新的在前")
    next_cursor: str | None = None

    @classmethod
    def of(cls, statement: PointsStatement) -> PointsOut:
        return cls(
            balance=statement.balance,
            expiring=[ExpiringOut.model_validate(e) for e in statement.expiring],
            items=[LedgerEntryOut.model_validate(e) for e in statement.page.items],
            next_cursor=statement.page.next_cursor,
        )


class AdjustmentIn(InModel):
    user_id: int = Field(ge=1, le=MAX_ID, strict=True, title="居民编号")
    delta: int = Field(
        strict=True,
        ge=-MAX_ADJUSTMENT,
        le=MAX_ADJUSTMENT,
        title="调整的积分",
        description="调整的积分，正数增加、负数扣减，不能为 0",
    )
    reason: Stripped = Field(min_length=REASON_MIN, max_length=REASON_MAX, title="事由")

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("调整的积分不能为 0")
        return value


# --- earning rules ---


class RuleIn(InModel):
    event_type: str = Field(
        max_length=32,
        title="积分事项",
        description="activity_attended | service_hour | wish_fulfilled | report_in_approved "
        "| staff_adjustment",
    )
    points: int = Field(
        strict=True, ge=0, le=INT32, title="积分", description="每次（每小时）的积分"
    )
    multiplier_percent: int = Field(
        default=100,
        strict=True,
        ge=0,
        le=INT32,
        title="倍数",
        description="倍数（百分比），150 即 1.5 倍",
    )
    daily_cap: int | None = Field(default=None, strict=True, ge=1, le=INT32, title="每日上限")
    monthly_cap: int | None = Field(default=None, strict=True, ge=1, le=INT32, title="每月上限")
    effective_from: AwareDatetime | None = Field(
        default=None, title="生效时间", description="生效时间，不早于现在；不填即刻生效"
    )
    note: str = Field(default="", max_length=NOTE_MAX, title="说明")


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int | None = Field(description="规则版本；null 表示系统默认")
    event_type: str
    points: int
    multiplier_percent: int
    daily_cap: int | None
    monthly_cap: int | None
    effective_from: datetime | None

    @classmethod
    def of(cls, rule: EarningRule | RuleTerms) -> RuleOut:
        """A stored version, or the terms in force (the built-in default has no id)."""
        if isinstance(rule, EarningRule):
            return cls.model_validate(rule)
        return cls(
            id=rule.rule_id,
            event_type=rule.event_type,
            points=rule.points,
            multiplier_percent=rule.multiplier_percent,
            daily_cap=rule.daily_cap,
            monthly_cap=rule.monthly_cap,
            effective_from=rule.effective_from,
        )


class EventRulesOut(BaseModel):
    event_type: str
    label: str
    unit: str
    current: RuleOut
    upcoming: list[RuleOut]
    history: list[RuleOut]

    @classmethod
    def of(cls, rules: EventRules) -> EventRulesOut:
        return cls(
            event_type=rules.event.key,
            label=rules.event.label,
            unit=rules.event.unit,
            current=RuleOut.of(rules.current),
            upcoming=[RuleOut.of(v) for v in rules.upcoming],
            history=[RuleOut.of(v) for v in rules.history],
        )


class RulesOut(BaseModel):
    items: list[EventRulesOut]
    next_cursor: str | None = None

    @classmethod
    def of(cls, rules: list[EventRules]) -> RulesOut:
        return cls(items=[EventRulesOut.of(r) for r in rules])


# --- preferences and leaderboards ---


class PreferencesIn(InModel):
    leaderboard_opt_in: bool = Field(strict=True, description="是否在排行榜上显示昵称")


class PreferencesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    leaderboard_opt_in: bool


class LeaderRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rank: int
    name: str = Field(description="同意公开的显示昵称，其余显示「匿名邻居」")
    points: int
    is_me: bool


class LeaderboardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scope: Literal["community", "unit"]
    scope_id: int
    scope_name: str
    period: Literal["month", "year"]
    start_date: date
    end_date: date
    items: list[LeaderRowOut] = Field(validation_alias="rows")
    my_points: int
    opted_in: bool
    next_cursor: str | None = None

    @classmethod
    def of(cls, board: Leaderboard) -> LeaderboardOut:
        return cls.model_validate(board)


# --- rewards and redemptions ---


class RewardIn(InModel):
    community_id: int = Field(strict=True, ge=1, le=MAX_ORG_ID, title="社区")
    title: str = Field(max_length=TEXT_LIMITS["title"], title="礼品名称")
    cost: int = Field(strict=True, ge=-INT32, le=INT32, title="所需积分", description="所需积分")
    stock: int = Field(strict=True, ge=-INT32, le=INT32, title="库存", description="库存")
    per_user_limit: int = Field(default=1, strict=True, ge=-INT32, le=INT32, title="每人限兑")
    description: str = Field(default="", max_length=TEXT_LIMITS["description"], title="介绍")
    image_url: str = Field(
        default="",
        max_length=TEXT_LIMITS["image_url"],
        title="图片地址",
        description="外部图片地址（https://，供小程序显示）；"
        "上传图片请用 PUT /rewards/{id}/picture",
    )
    on_sale_from: AwareDatetime | None = Field(default=None, title="开始兑换时间")
    on_sale_until: AwareDatetime | None = Field(default=None, title="结束兑换时间")
    pickup_place: str = Field(default="", max_length=TEXT_LIMITS["pickup_place"], title="领取地点")
    pickup_days: int | None = Field(
        default=None,
        strict=True,
        ge=-INT32,
        le=INT32,
        title="领取期限",
        description="兑换后几天内领取",
    )


class RewardPatch(InModel):
    title: str | None = Field(default=None, max_length=TEXT_LIMITS["title"], title="礼品名称")
    cost: int | None = Field(default=None, strict=True, ge=-INT32, le=INT32, title="所需积分")
    per_user_limit: int | None = Field(
        default=None, strict=True, ge=-INT32, le=INT32, title="每人限兑"
    )
    description: str | None = Field(
        default=None, max_length=TEXT_LIMITS["description"], title="介绍"
    )
    image_url: str | None = Field(
        default=None, max_length=TEXT_LIMITS["image_url"], title="图片地址"
    )
    on_sale_from: AwareDatetime | None = Field(default=None, title="开始兑换时间")
    on_sale_until: AwareDatetime | None = Field(default=None, title="结束兑换时间")
    pickup_place: str | None = Field(
        default=None, max_length=TEXT_LIMITS["pickup_place"], title="领取地点"
    )
    pickup_days: int | None = Field(
        default=None, strict=True, ge=-INT32, le=INT32, title="领取期限"
    )
    active: bool | None = Field(default=None, strict=True, description="false 即下架")


class StockChangeIn(InModel):
    delta: int = Field(strict=True, ge=-INT32, le=INT32, description="增加（正）或减少（负）的库存")


class RewardOut(OutModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    title: str
    description: str
    image_url: str = Field(
        description="图片：上传过图片时为本站地址（带版本号，换图即变），否则为外部 https:// 地址，"
        "都没有为空"
    )
    cost: int
    stock: int
    per_user_limit: int
    on_sale_from: datetime | None
    on_sale_until: datetime | None
    pickup_place: str
    pickup_days: int
    active: bool
    on_sale: bool = Field(description="现在能否兑换")

    @classmethod
    def of(cls, reward: Reward) -> RewardOut:
        """A reward read through backend.points.rewards (its picture known)."""
        computed = ("on_sale", "image_url")
        stored = {name: getattr(reward, name) for name in cls.model_fields if name not in computed}
        return cls(**stored, image_url=image_url(reward), on_sale=is_on_sale(reward))


class StaffRedemptionOut(OutModel):
    """A redemption as staff see it: without its pickup code, which only the holder has and
    shows at pickup, so that a code typed or scanned by staff proves the holder is there."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    reward_id: int
    reward_title: str
    community_id: int
    user_id: int
    cost: int
    status: Literal["pending_pickup", "fulfilled", "cancelled", "expired"]
    created_at: datetime
    expires_at: datetime = Field(description="领取截止时间")
    fulfilled_at: datetime | None
    closed_at: datetime | None
    close_reason: str

    @classmethod
    def of(cls, redemption: Redemption) -> StaffRedemptionOut:
        """A redemption whose reward is loaded, without its pickup code."""
        return StaffRedemptionOut(
            id=redemption.id,
            reward_id=redemption.reward_id,
            reward_title=redemption.reward.title,
            community_id=redemption.community_id,
            user_id=redemption.user_id,
            cost=redemption.cost,
            status=redemption.status,
            created_at=redemption.created_at,
            expires_at=redemption.expires_at,
            fulfilled_at=redemption.fulfilled_at,
            closed_at=redemption.closed_at,
            close_reason=redemption.close_reason,
        )


class RedemptionOut(StaffRedemptionOut):
    """The holder's own view of a redemption, with its pickup code."""

    pickup_code: str = Field(description="领取码（只在兑换人本人的视图中出现）")
    pickup_url: str = Field(description="领取码二维码的内容（工作人员扫码即打开核销页）")

    @classmethod
    def of(cls, redemption: Redemption) -> RedemptionOut:
        """The holder's own view of a redemption whose reward is loaded."""
        return cls(
            **StaffRedemptionOut.of(redemption).model_dump(),
            pickup_code=redemption.pickup_code,
            pickup_url=pickup_url(redemption),
        )


class ResidentLookupIn(InModel):
    query: str = Field(
        min_length=1,
        max_length=32,
        description="手机号或居民编号（放在请求体里，不出现在网址和日志中）",
    )


class ResidentOut(BaseModel):
    user_id: int = Field(description="居民编号")
    name: str = Field(description="昵称（打码，如 王**）")
    community_id: int | None

    @classmethod
    def of(cls, user: User) -> ResidentOut:
        return cls(user_id=user.id, name=mask_name(user.nickname), community_id=user.community_id)


class VerifyIn(InModel):
    pickup_code: str = Field(min_length=1, max_length=32)


class CancelIn(InModel):
    reason: Stripped = Field(min_length=REASON_MIN, max_length=REASON_MAX, title="取消原因")
