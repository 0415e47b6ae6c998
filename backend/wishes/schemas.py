"""Request and response bodies of the micro-wish and two-way board API (shapes from API.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

from backend.accounts.schemas import OrgId
from backend.core.ids import MAX_ID
from backend.core.pagination import OutModel
from backend.core.text import CONTROL_MESSAGE, InModel, has_forbidden
from backend.wishes.models import BOARD_CATEGORIES, WISH_CATEGORIES

WishCategory = Literal[WISH_CATEGORIES]  # type: ignore[valid-type]
BoardCategory = Literal[BOARD_CATEGORIES]  # type: ignore[valid-type]
BoardKind = Literal["need", "resource"]
WishStatusFilter = Literal["open", "claimed", "fulfilled", "closed"]
StaffStatusFilter = Literal[
    "pending_review", "open", "rejected", "claimed", "fulfilled", "closed", "withdrawn", "removed"
]
Viewer = Literal["public", "poster", "claimer", "staff"]
ContactVia = Literal["direct", "community"]


def _one_line(value: str) -> str:
    # InModel lets tab and newline through; a title or an address is one line.
    if has_forbidden(value, multiline=False):
        raise PydanticCustomError("text_control", CONTROL_MESSAGE)
    return value


# Stripped, so a title of spaces is as short as it looks; the limits in `Field`, where the H5
# forms read their boxes' maxlength (h5.forms.max_length); the length before the one-line
# check, so a length error reads as one.
_Stripped = StringConstraints(strip_whitespace=True)


def _text(min_length: int, max_length: int, *, multiline: bool = True):
    text = Annotated[str, _Stripped, Field(min_length=min_length, max_length=max_length)]
    return text if multiline else Annotated[text, AfterValidator(_one_line)]


# The limits of the notes and reasons, once: the keyword verbs (fulfil, confirm, review,
# remove, progress) give them to clean_text for what reaches them without a model.
NOTE_MIN, NOTE_MAX = 2, 500
REASON_MIN, REASON_MAX = 2, 200
SHORT_MAX = 200

Title = _text(2, 40, multiline=False)
Description = _text(5, 500)
Note = _text(NOTE_MIN, NOTE_MAX)
Reason = _text(REASON_MIN, REASON_MAX)
ShortText = _text(0, SHORT_MAX)
Address = _text(0, 100, multiline=False)


class WishIn(InModel):
    community_id: OrgId = Field(title="社区", description="发布心愿的社区（须是自己居住的社区）")
    title: Title = Field(title="标题")
    description: Description = Field(
        title="心愿内容", description="心愿内容：请勿填写手机号、身份证号等个人信息"
    )
    category: WishCategory = Field(title="心愿类别")
    needed_by: date | None = Field(
        None, title="希望完成日期", description="希望在这一天之前实现（本地日期）"
    )
    address: Address = Field(
        "", title="服务地点", description="服务地点：工作人员可见，心愿人接受认领后认领人可见"
    )
    contact_via: ContactVia = Field(
        "direct",
        title="联系方式",
        description="direct：接受认领后把心愿人的联系方式告知认领人；"
        "community：由社区联系，认领人只看到社区联系人",
    )


class ReviewIn(InModel):
    approve: StrictBool
    # The limit again on the optional field itself, where an H5 form reads it.
    reason: ShortText | None = Field(
        None, max_length=SHORT_MAX, title="审核意见", description="不通过时必填，会告知居民"
    )


class ClaimIn(InModel):
    unit_id: OrgId | None = Field(None, description="代表所在的驻区单位认领（单位获得认领记录）")


class AcceptIn(InModel):
    claimer_id: int = Field(
        ge=1, le=MAX_ID, strict=True, description="接受的认领人（心愿详情中的 claimer_id）"
    )


class FulfilIn(InModel):
    note: Note = Field(title="完成情况", description="完成情况说明")


class ConfirmIn(InModel):
    rating: int = Field(ge=1, le=5, strict=True, description="满意度 1–5")
    thanks: ShortText | None = Field(
        None, max_length=SHORT_MAX, title="感谢的话", description="给认领人的感谢话语"
    )


class RemoveIn(InModel):
    reason: Reason = Field(title="关闭原因", description="关闭原因，会告知居民")


class Flag(OutModel):
    """A stretch of text that looks like personal data (for staff review)."""

    kind: Literal["phone", "landline", "id_number"]
    field: Literal["title", "description", "address"]
    text: str
    start: int
    end: int


class Contact(OutModel):
    """The poster's own contact: for staff, and for the claimer the poster accepted."""

    name: str
    phone: str | None = Field(description="心愿人的手机号")
    address: str


class CommunityContact(OutModel):
    """The community's public work contact, through whom a claimer reaches the poster."""

    community_name: str
    name: str = Field(description="社区联系人（工作人员）")
    phone: str = Field(description="工作电话")


class WishEventOut(OutModel):
    action: str
    from_status: str | None
    to_status: str
    actor: str = Field(description="操作人身份：心愿人、认领人、社区工作人员或系统")
    note: str
    created_at: datetime


class WishOut(OutModel):
    """What anyone may see of a reviewed wish: the poster masked, no phone, no address."""

    id: int
    community_id: int
    community_name: str
    title: str
    description: str
    category: str
    needed_by: date | None
    status: str
    poster_name: str = Field(description="心愿人（姓名脱敏，如 张**）")
    claimed_by: str | None = Field(description="认领方：单位名称，或脱敏的认领人姓名")
    claimer_unit_id: int | None
    rating: int | None
    created_at: datetime
    claimed_at: datetime | None
    fulfilled_at: datetime | None
    closed_at: datetime | None


class WishDetailOut(WishOut):
    """A wish as the viewer may see it: the poster, the claimer and staff see more."""

    viewer: Viewer
    actions: list[str] = Field(description="当前用户可进行的操作")
    contact_via: ContactVia = Field(
        description="心愿人选择的联系方式：direct 直接联系，community 由社区联系"
    )
    claimer_id: int | None = Field(description="当前认领人（心愿人、认领人与工作人员可见）")
    accepted_at: datetime | None = Field(description="心愿人（或工作人员代为）接受认领的时间")
    contact: Contact | None = Field(
        description="心愿人的联系方式：工作人员可见；认领人在心愿人接受认领后可见"
        "（心愿人选择由社区联系时始终不可见）"
    )
    poster_phone_masked: str | None = Field(
        description="心愿人手机号（脱敏，如 138****1234），认领人可见"
    )
    community_contact: CommunityContact | None = Field(
        description="社区联系人与工作电话（认领人与工作人员可见）"
    )
    claim_due_at: datetime | None
    review_reason: str | None
    fulfil_note: str | None
    thanks: str | None
    has_photo: bool
    history: list[WishEventOut] | None = Field(description="状态记录（心愿人与工作人员可见）")
    flags: list[Flag] | None = Field(description="疑似个人信息（仅工作人员可见）")


class UnitCreditOut(OutModel):
    unit_id: int
    unit_name: str
    claimed: int = Field(description="认领中")
    fulfilled: int = Field(description="已完成（含待确认）")
    closed: int = Field(description="心愿人已确认")


# --- the two-way board ---


class BoardItemIn(InModel):
    kind: BoardKind = Field(title="类型", description="need 社区需求 / resource 单位资源")
    community_id: OrgId | None = Field(None, title="社区", description="需求：发布的社区")
    unit_id: OrgId | None = Field(None, title="单位", description="资源：提供的单位")
    title: Title = Field(title="标题")
    description: Description = Field(title="内容")
    category: BoardCategory = Field(title="类别")
    quantity: int = Field(ge=1, le=100, strict=True, title="份数", description="可被认领的份数")


class BoardClaimIn(InModel):
    unit_id: OrgId | None = Field(None, description="认领需求的单位")
    community_id: OrgId | None = Field(None, description="认领资源的社区")


class ProgressIn(InModel):
    note: Note = Field(title="进展")


class BoardContact(OutModel):
    """The person on the other side of a claim: masked until the publisher confirms it."""

    name: str = Field(description="联系人（确认对接前脱敏，如 张**）")
    phone: str | None = Field(description="手机号（确认对接前脱敏，如 138****1234）")
    shared: bool = Field(description="是否已在确认对接后完整告知")


class BoardClaimOut(OutModel):
    id: int
    item_id: int
    item_title: str
    item_kind: str
    claimant_name: str
    unit_id: int | None
    community_id: int | None
    status: str
    progress_note: str | None = Field(description="进展（对接双方可见）")
    publisher_contact: BoardContact | None = Field(
        description="发布方联系人（认领方可见，发布方确认对接后完整显示）"
    )
    claimant_contact: BoardContact | None = Field(
        description="认领方联系人（发布方可见，确认对接后完整显示）"
    )
    confirmed_at: datetime | None
    publisher_done: bool
    claimant_done: bool
    done_at: datetime | None
    created_at: datetime
    actions: list[str]


class BoardItemOut(OutModel):
    id: int
    kind: str
    community_id: int | None
    unit_id: int | None
    publisher_name: str = Field(description="发布方：社区或单位名称")
    title: str
    description: str
    category: str
    quantity: int
    claimed: int
    remaining: int
    status: str
    created_at: datetime


class BoardItemDetailOut(BoardItemOut):
    claims: list[BoardClaimOut]
    actions: list[str]


class CommunityMatchOut(OutModel):
    community_id: int
    community_name: str
    needs: int = Field(description="发布的需求数")
    needs_quantity: int
    needs_claimed: int
    resources_claimed: int = Field(description="认领的单位资源数")
    claims_done: int = Field(description="已完成的对接")


class SuggestionOut(OutModel):
    need: BoardItemOut
    resources: list[BoardItemOut] = Field(description="同类别、仍有名额的单位资源")


class MatchingOut(OutModel):
    communities: list[CommunityMatchOut]
    suggestions: list[SuggestionOut]
