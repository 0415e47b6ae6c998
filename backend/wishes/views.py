"""What the wish and board services return: a row as one viewer may see it.

The services decide what each viewer sees (masked names, the contacts, the actions); these
dataclasses carry the result, and `backend.wishes.schemas` maps them to JSON with `of()`.
The labels are what residents and staff read of a status, an action or an actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

STATUS_LABELS = {
    "pending_review": "待审核",
    "open": "待认领",
    "rejected": "未通过",
    "claimed": "已认领",
    "fulfilled": "待确认",
    "closed": "已圆梦",
    "withdrawn": "已撤回",
    "removed": "已关闭",
}
ACTION_LABELS = {
    "submitted": "提交心愿",
    "approved": "审核通过",
    "rejected": "审核未通过",
    "claimed": "认领心愿",
    "contact_shared": "接受认领，告知联系方式",
    "accepted": "接受认领（由社区联系）",
    "released": "放弃认领",
    "auto_released": "超时未完成，自动释放",
    "fulfilled": "完成心愿",
    "closed": "确认并评价",
    "withdrawn": "撤回心愿",
    "removed": "工作人员关闭",
}
ACTOR_LABELS = {
    "poster": "心愿人",
    "claimer": "认领人",
    "staff": "社区工作人员",
    "system": "系统",
}
KIND_LABELS = {"need": "社区需求", "resource": "单位资源"}
CLAIM_STATUS_LABELS = {
    "pending": "待发布方确认",
    "confirmed": "对接中",
    "done": "已完成",
    "declined": "已婉拒",
    "cancelled": "已取消",
}


# --- wishes ---


@dataclass(frozen=True, kw_only=True)
class PersonalFlag:
    """A stretch of a wish's text that looks like personal data (for staff review)."""

    kind: str  # phone, landline or id_number
    field: str  # title, description or address
    text: str
    start: int
    end: int


@dataclass(frozen=True, kw_only=True)
class PosterContact:
    """The poster's own contact: for staff, and for the claimer the poster accepted."""

    name: str
    phone: str | None
    address: str


@dataclass(frozen=True, kw_only=True)
class OfficeContact:
    """The community's public work contact, through whom a claimer reaches the poster."""

    community_name: str
    name: str
    phone: str


@dataclass(frozen=True, kw_only=True)
class WishStep:
    """One row of a wish's history, its actor named by role."""

    action: str
    from_status: str | None
    to_status: str
    actor: str
    note: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class WishSummary:
    """A wish as a list shows it (text masked unless the viewer may read it whole)."""

    id: int
    community_id: int
    community_name: str
    title: str
    description: str
    category: str
    needed_by: date | None
    status: str
    poster_name: str
    claimed_by: str | None
    claimer_unit_id: int | None
    rating: int | None
    created_at: datetime
    claimed_at: datetime | None
    fulfilled_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class WishDetail(WishSummary):
    """A wish as one viewer may see it: the poster, the claimer and staff see more."""

    viewer: str  # public, poster, claimer or staff
    actions: list[str]
    contact_via: str
    claimer_id: int | None
    accepted_at: datetime | None
    contact: PosterContact | None
    poster_phone_masked: str | None
    community_contact: OfficeContact | None
    claim_due_at: datetime | None
    review_reason: str | None
    fulfil_note: str | None
    thanks: str | None
    has_photo: bool
    history: list[WishStep] | None
    flags: list[PersonalFlag] | None


@dataclass(kw_only=True)
class UnitCredit:
    """Wishes a resident unit claimed, by status."""

    unit_id: int
    unit_name: str
    claimed: int = 0
    fulfilled: int = 0
    closed: int = 0


# --- the two-way board ---


@dataclass(frozen=True, kw_only=True)
class BoardPerson:
    """The person on the other side of a claim: masked until the publisher confirms it."""

    name: str
    phone: str | None
    shared: bool


@dataclass(frozen=True, kw_only=True)
class BoardClaimView:
    id: int
    item_id: int
    item_title: str
    item_kind: str
    claimant_name: str
    unit_id: int | None
    community_id: int | None
    status: str
    progress_note: str | None
    publisher_contact: BoardPerson | None
    claimant_contact: BoardPerson | None
    confirmed_at: datetime | None
    publisher_done: bool
    claimant_done: bool
    done_at: datetime | None
    created_at: datetime
    actions: list[str]


@dataclass(frozen=True, kw_only=True)
class BoardItemView:
    id: int
    kind: str
    community_id: int | None
    unit_id: int | None
    publisher_name: str
    title: str
    description: str
    category: str
    quantity: int
    claimed: int
    remaining: int
    status: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class BoardItemDetail(BoardItemView):
    claims: list[BoardClaimView]
    actions: list[str]


@dataclass(frozen=True, kw_only=True)
class CommunityMatch:
    community_id: int
    community_name: str
    needs: int
    needs_quantity: int
    needs_claimed: int
    resources_claimed: int
    claims_done: int


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    need: BoardItemView
    resources: list[BoardItemView]


@dataclass(frozen=True, kw_only=True)
class Matching:
    communities: list[CommunityMatch]
    suggestions: list[Suggestion]
