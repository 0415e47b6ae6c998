"""The two-way board (双向认领): communities publish needs, units publish resources, and
each side claims from the other.

A unit claims a community's need; a community (its staff) claims a unit's resource. Each
item takes at most `quantity` live claims, held like seats by one guarded UPDATE
(`claimed < quantity`), and one live claim per claimant by a unique key. The publisher
confirms a claim (or declines it, freeing the place), either side records progress, and
the claim is done when both sides have marked it done. Locks are taken item first, then
claim, in every transition that touches both.

Contacts on a need-to-know basis: each side of a claim sees the other side's person (who
published the item, who made the claim) masked (张**, 138****1234) until the publisher
confirms the claim, and in full while it is confirmed or done; the public board shows only
organisations. One person publishes at most the configured number of items per local day.

Each step is told to the other side in the step's own transaction: the person who published
the item hears of claims and cancellations, the person who made the claim hears of
confirmation or refusal, and progress and completion go to whichever side did not act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import quota
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import decrypt_field, mask_name, mask_phone
from backend.core.text import clean_text
from backend.orgs.models import Community, Unit
from backend.wishes.exceptions import (
    BoardAlreadyClaimed,
    BoardClaimStateInvalid,
    BoardItemClosed,
    BoardItemFull,
    BoardItemsPerDayReached,
    NotBoardSide,
    NotUnitMember,
)
from backend.wishes.models import (
    BOARD_CATEGORIES,
    BOARD_KINDS,
    LIVE_BOARD_CLAIM_STATUSES,
    BoardClaim,
    BoardEvent,
    BoardItem,
)
from backend.wishes.schemas import NOTE_MAX, NOTE_MIN, BoardItemIn
from backend.wishes.views import (
    KIND_LABELS,
    BoardClaimView,
    BoardItemDetail,
    BoardItemView,
    BoardPerson,
    CommunityMatch,
    Matching,
    Suggestion,
)

MAX_SUGGESTIONS = 50
BOARD_URL = "/h5/wishes/board"
# Claims in which the two sides work together and so see each other's contact in full.
SHARED_CLAIM_STATUSES = ("confirmed", "done")


# --- who is which side ---


async def is_publisher(actor: User | None, item: BoardItem) -> bool:
    """Staff of the community that needs it, or a member of the unit that offers it."""
    if actor is None:
        return False
    if item.kind == "need":
        return await accounts_service.is_staff_of(actor, item.community_id)
    return actor.unit_id is not None and actor.unit_id == item.unit_id


async def _is_claimant(actor: User | None, claim: BoardClaim) -> bool:
    if actor is None:
        return False
    if claim.unit_id is not None:
        return actor.unit_id == claim.unit_id
    return await accounts_service.is_staff_of(actor, claim.community_id)


@dataclass(frozen=True)
class Sides:
    publisher: bool
    claimant: bool


async def _sides(actor: User | None, item: BoardItem, claim: BoardClaim) -> Sides:
    return Sides(await is_publisher(actor, item), await _is_claimant(actor, claim))


# --- views ---


def _publisher_name(item: BoardItem) -> str:
    publisher = item.community if item.kind == "need" else item.unit
    return publisher.name if publisher else ""


def _claimant_name(claim: BoardClaim) -> str:
    return claim.unit.name if claim.unit_id is not None else claim.community.name


def _item_fields(item: BoardItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "community_id": item.community_id,
        "unit_id": item.unit_id,
        "publisher_name": _publisher_name(item),
        "title": item.title,
        "description": item.description,
        "category": item.category,
        "quantity": item.quantity,
        "claimed": item.claimed,
        "remaining": max(0, item.quantity - item.claimed),
        "status": item.status,
        "created_at": item.created_at,
    }


def _claim_actions(claim: BoardClaim, sides: Sides) -> list[str]:
    status = claim.status
    wanted = [
        ("confirm", sides.publisher and status == "pending"),
        ("decline", sides.publisher and status == "pending"),
        ("cancel", sides.claimant and status in ("pending", "confirmed")),
        ("progress", (sides.publisher or sides.claimant) and status == "confirmed"),
        (
            "done",
            status == "confirmed"
            and (
                (sides.publisher and claim.publisher_done_at is None)
                or (sides.claimant and claim.claimant_done_at is None)
            ),
        ),
    ]
    return [name for name, allowed in wanted if allowed]


def _person(user: User, *, shared: bool) -> BoardPerson:
    phone = decrypt_field(user.phone_encrypted)
    if shared:
        return BoardPerson(name=user.nickname, phone=phone, shared=True)
    return BoardPerson(name=mask_name(user.nickname), phone=mask_phone(phone), shared=False)


def _claim_view(claim: BoardClaim, item: BoardItem, sides: Sides, *, admin: bool) -> BoardClaimView:
    party = sides.publisher or sides.claimant or admin
    shared = admin or claim.status in SHARED_CLAIM_STATUSES
    return BoardClaimView(
        id=claim.id,
        item_id=item.id,
        item_title=item.title,
        item_kind=item.kind,
        claimant_name=_claimant_name(claim),
        unit_id=claim.unit_id,
        community_id=claim.community_id,
        status=claim.status,
        progress_note=claim.progress_note if party else None,
        publisher_contact=(
            _person(item.created_by, shared=shared) if sides.claimant or admin else None
        ),
        claimant_contact=(
            _person(claim.claimed_by, shared=shared) if sides.publisher or admin else None
        ),
        confirmed_at=claim.confirmed_at,
        publisher_done=claim.publisher_done_at is not None,
        claimant_done=claim.claimant_done_at is not None,
        done_at=claim.done_at,
        created_at=claim.created_at,
        actions=_claim_actions(claim, sides),
    )


def _items():
    return BoardItem.all().select_related("community", "unit", "created_by")


def _claims():
    return BoardClaim.all().select_related("unit", "community", "claimed_by")


async def _load_item(item_id: int) -> BoardItem:
    item = await _items().filter(id=item_id).first() if may_exist(item_id) else None
    if item is None:
        raise NotFound("清单项目不存在")
    return item


async def _load_claim(claim_id: int) -> tuple[BoardClaim, BoardItem]:
    claim = await _claims().filter(id=claim_id).first() if may_exist(claim_id) else None
    if claim is None:
        raise NotFound("对接记录不存在")
    return claim, await _load_item(claim.item_id)


async def _may_claim_item(actor: User | None, item: BoardItem) -> bool:
    if actor is None or item.status != "open" or item.claimed >= item.quantity:
        return False
    if item.kind == "need":
        return actor.unit_id is not None and not await BoardClaim.exists(
            item_id=item.id, live_key=f"u{actor.unit_id}"
        )
    return await accounts_service.is_staff_anywhere(actor)


async def describe_item(item: BoardItem, viewer: User | None) -> BoardItemDetail:
    """An item with its claims and what `viewer` may do; progress notes for the two sides."""
    admin = viewer is not None and await accounts_service.is_street_admin(viewer)
    publisher = await is_publisher(viewer, item)
    claims = []
    for claim in await _claims().filter(item_id=item.id):
        sides = Sides(publisher, await _is_claimant(viewer, claim))
        if claim.status in LIVE_BOARD_CLAIM_STATUSES or sides.publisher or sides.claimant:
            claims.append(_claim_view(claim, item, sides, admin=admin))
    actions = []
    if await _may_claim_item(viewer, item):
        actions.append("claim")
    if publisher and item.status == "open":
        actions.append("close")
    return BoardItemDetail(**_item_fields(item), claims=claims, actions=actions)


async def _load_claim_view(claim_id: int, actor: User) -> BoardClaimView:
    claim, item = await _load_claim(claim_id)
    admin = await accounts_service.is_street_admin(actor)
    return _claim_view(claim, item, await _sides(actor, item, claim), admin=admin)


# --- reading ---


async def list_items(
    *,
    page: PageRequest,
    kind: str | None = None,
    community_id: int | None = None,
    category: str | None = None,
    open_only: bool = False,
) -> Page[BoardItemView]:
    """Needs and resources, newest first (public: no personal data on the board)."""
    if kind is not None and kind not in BOARD_KINDS:
        raise Invalid(fields={"kind": "取值不在允许范围内"})
    if category is not None and category not in BOARD_CATEGORIES:
        raise Invalid(fields={"category": "取值不在允许范围内"})
    query = _items()
    if kind:
        query = query.filter(kind=kind)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if category:
        query = query.filter(category=category)
    if open_only:
        query = query.filter(status="open", claimed__lt=F("quantity"))
    result = await paginate(query, page, descending=True)
    return Page[BoardItemView](
        items=[BoardItemView(**_item_fields(i)) for i in result.items],
        next_cursor=result.next_cursor,
    )


async def get_item(*, viewer: User | None, item_id: int) -> BoardItemDetail:
    """One item with its claims, as `viewer` may see it."""
    return await describe_item(await _load_item(item_id), viewer)


async def list_claims_for(*, actor: User, page: PageRequest) -> Page[BoardClaimView]:
    """Claims on items `actor`'s side published or that `actor`'s side made, newest first."""
    staff_of = await accounts_service.staff_community_ids(actor)
    scope = Q(id__lt=0)
    if actor.unit_id is not None:
        scope |= Q(unit_id=actor.unit_id) | Q(item__kind="resource", item__unit_id=actor.unit_id)
    if staff_of is None:
        scope = Q(id__gt=0)
    elif staff_of:
        scope |= Q(community_id__in=staff_of)
        scope |= Q(item__kind="need", item__community_id__in=staff_of)
    query = _claims().filter(scope)
    result = await paginate(query, page, descending=True)
    admin = staff_of is None
    items = []
    for claim in result.items:
        item = await _load_item(claim.item_id)
        items.append(_claim_view(claim, item, await _sides(actor, item, claim), admin=admin))
    return Page[BoardClaimView](items=items, next_cursor=result.next_cursor)


async def matching(*, actor: User) -> Matching:
    """For street admins: each community's needs and claims, and open needs paired with open
    resources of the same category."""
    await accounts_service.require_street_admin(actor)
    communities = await Community.all().order_by("id")
    needs = await _items().filter(kind="need")
    claims = await BoardClaim.filter(status__in=LIVE_BOARD_CLAIM_STATUSES).select_related("item")
    rows = []
    for community in communities:
        own = [n for n in needs if n.community_id == community.id]
        rows.append(
            CommunityMatch(
                community_id=community.id,
                community_name=community.name,
                needs=len(own),
                needs_quantity=sum(n.quantity for n in own),
                needs_claimed=sum(n.claimed for n in own),
                resources_claimed=sum(1 for c in claims if c.community_id == community.id),
                claims_done=sum(
                    1
                    for c in claims
                    if c.status == "done"
                    and (c.community_id == community.id or c.item.community_id == community.id)
                ),
            )
        )
    open_resources = await _items().filter(
        kind="resource", status="open", claimed__lt=F("quantity")
    )
    suggestions = []
    for need in needs:
        if need.status != "open" or need.claimed >= need.quantity:
            continue
        fits = [r for r in open_resources if r.category == need.category]
        if fits:
            suggestions.append(
                Suggestion(
                    need=BoardItemView(**_item_fields(need)),
                    resources=[BoardItemView(**_item_fields(r)) for r in fits],
                )
            )
        if len(suggestions) >= MAX_SUGGESTIONS:
            break
    return Matching(communities=rows, suggestions=suggestions)


# --- transitions ---


async def _event(claim_id: int, action: str, actor: User, note: str = "") -> BoardEvent:
    return await BoardEvent.create(
        claim_id=claim_id, action=action, actor_id=actor.id, note=note, created_at=clock.now()
    )


# Per step: the notice's heading (before the item's title), its one-line summary and its
# text; {by} is the side that took the step.
STEP_NOTICES = {
    "claimed": ("新的认领", "请确认或婉拒", "{by}认领了您发布的{kind}{what}，请尽快确认或婉拒。"),
    "confirmed": ("认领已确认", "可以开始对接了", "{by}已确认您对{what}的认领，可以开始对接了。"),
    "declined": ("认领未通过", "发布方已婉拒", "{by}婉拒了您对{what}的认领，感谢您的关注。"),
    "cancelled": ("认领已取消", "名额已重新开放", "{by}取消了对{what}的认领，名额已重新开放。"),
    "progress": ("对接有新进展", "{note}", "{by}更新了{what}的对接进展：{note}"),
    "marked_done": (
        "对方已标记完成",
        "请核实后也标记完成",
        "{by}已将{what}的对接标记为完成，请核实后也标记完成。",
    ),
    "done": ("对接已完成", "双方均已确认完成", "{what}的对接双方均已确认完成，感谢参与！"),
}


async def _notify(
    item: BoardItem, claim: BoardClaim, event: BoardEvent, *, actor: User, by: Sides
) -> None:
    """Tell the other side of `by` about `event`: the claimant's person (who made the claim)
    of a publisher's step, the publisher's person (who published the item) of a claimant's.
    Keyed by the event, so a retried enqueue of the same step adds nothing."""
    recipients = []
    if by.publisher:
        recipients.append(claim.claimed_by_id)
    if by.claimant:
        recipients.append(item.created_by_id)
    heading, summary, body = STEP_NOTICES[event.action]
    values = {
        "by": _publisher_name(item) if by.publisher else _claimant_name(claim),
        "kind": KIND_LABELS[item.kind],
        "what": f"“{item.title}”",
        "note": event.note,
    }
    for user_id in dict.fromkeys(recipients):
        if user_id == actor.id:
            continue
        await enqueue(
            template_key="notice",
            context={
                "title": f"{heading}：{item.title}",
                "summary": summary.format(**values),
                "body": body.format(**values),
                "publisher": values["by"],
                "url": f"{BOARD_URL}/{item.id}",
            },
            dedupe_key=f"board:{claim.id}:{event.id}:{user_id}",
            user_id=user_id,
        )


PUBLISHER_STEP = Sides(publisher=True, claimant=False)
CLAIMANT_STEP = Sides(publisher=False, claimant=True)


async def publish_item(*, actor: User, data: BoardItemIn) -> BoardItemDetail:
    """A need by staff of its community, or a resource by a member of the unit offering it; at
    most the configured number per person per local day."""
    community_id, unit_id = data.community_id, data.unit_id
    if data.kind == "need":
        if community_id is None or unit_id is not None:
            raise Invalid(fields={"community_id": "发布需求请选择社区，不要填写单位"})
        await accounts_service.require_staff_of(actor, community_id)
        if not await Community.exists(id=community_id):
            raise Invalid(fields={"community_id": "社区不存在"})
    else:
        if unit_id is None or community_id is not None:
            raise Invalid(fields={"unit_id": "发布资源请选择单位，不要填写社区"})
        if actor.unit_id != unit_id:
            raise NotUnitMember("只有该单位的成员可以发布单位资源")
        unit = await Unit.get(id=unit_id)
        community_id = unit.community_id
    now = clock.now()
    async with in_transaction():
        limit = get_settings().board_items_per_day
        if not await quota.take(f"board-item:{actor.id}", bucket=quota.local_day(now), limit=limit):
            raise BoardItemsPerDayReached(
                f"您今天已发布 {limit} 项需求或资源，达到每日上限，请明天再发布"
            )
        item = await BoardItem.create(
            **data.model_dump(exclude={"community_id"}),
            community_id=community_id,
            created_by_id=actor.id,
            created_at=now,
        )
    return await get_item(viewer=actor, item_id=item.id)


async def claim_item(
    *, actor: User, item_id: int, unit_id: int | None = None, community_id: int | None = None
) -> BoardClaimView:
    """Take one of the item's places for a unit (a need) or a community (a resource): never
    more claims than its quantity, never two live claims by one claimant."""
    item = await _load_item(item_id)
    if item.kind == "need":
        if unit_id is None or community_id is not None:
            raise Invalid(fields={"unit_id": "认领社区需求请选择所在单位"})
        if actor.unit_id != unit_id:
            raise NotUnitMember()
        live_key = f"u{unit_id}"
    else:
        if community_id is None or unit_id is not None:
            raise Invalid(fields={"community_id": "认领单位资源请选择社区"})
        await accounts_service.require_staff_of(actor, community_id)
        if not await Community.exists(id=community_id):
            raise Invalid(fields={"community_id": "社区不存在"})
        live_key = f"c{community_id}"
    # Answers a repeated claim early; the unique key below decides.
    if await BoardClaim.exists(item_id=item.id, live_key=live_key):
        raise BoardAlreadyClaimed()
    try:
        async with in_transaction():
            took = await BoardItem.filter(
                id=item.id, status="open", claimed__lt=F("quantity")
            ).update(claimed=F("claimed") + 1)
            if not took:
                status = await BoardItem.filter(id=item.id).first().values_list("status", flat=True)
                raise BoardItemClosed() if status != "open" else BoardItemFull()
            claim = await BoardClaim.create(
                item_id=item.id,
                unit_id=unit_id,
                community_id=community_id,
                live_key=live_key,
                claimed_by_id=actor.id,
                status="pending",
                created_at=clock.now(),
            )
            event = await _event(claim.id, "claimed", actor)
            claim = await _claims().get(id=claim.id)
            await _notify(item, claim, event, actor=actor, by=CLAIMANT_STEP)
    except IntegrityError as exc:
        raise BoardAlreadyClaimed() from exc
    return await _load_claim_view(claim.id, actor)


async def close_item(*, actor: User, item_id: int) -> BoardItemDetail:
    """The publisher stops further claims (live claims go on)."""
    item = await _load_item(item_id)
    if not await is_publisher(actor, item):
        raise NotBoardSide("只有发布方可以停止认领")
    if not await BoardItem.filter(id=item.id, status="open").update(status="closed"):
        raise BoardItemClosed()
    return await get_item(viewer=actor, item_id=item.id)


async def _require(actor: User, item: BoardItem, claim: BoardClaim, *, side: str) -> Sides:
    sides = await _sides(actor, item, claim)
    if side == "publisher" and not sides.publisher:
        raise NotBoardSide("只有发布方可以进行此操作")
    if side == "claimant" and not sides.claimant:
        raise NotBoardSide("只有认领方可以进行此操作")
    if side == "either" and not (sides.publisher or sides.claimant):
        raise NotBoardSide()
    return sides


async def confirm_claim(*, actor: User, claim_id: int) -> BoardClaimView:
    """The publisher accepts a pending claim (once)."""
    claim, item = await _load_claim(claim_id)
    await _require(actor, item, claim, side="publisher")
    async with in_transaction():
        if not await BoardClaim.filter(id=claim.id, status="pending").update(
            status="confirmed", confirmed_at=clock.now()
        ):
            raise BoardClaimStateInvalid()
        event = await _event(claim.id, "confirmed", actor)
        await _notify(item, claim, event, actor=actor, by=PUBLISHER_STEP)
    return await _load_claim_view(claim.id, actor)


async def _end_claim(
    *, actor: User, claim_id: int, side: str, from_statuses: tuple[str, ...], to_status: str
) -> BoardClaimView:
    claim, item = await _load_claim(claim_id)
    await _require(actor, item, claim, side=side)
    async with in_transaction():
        # The place goes back first (item row, then claim row: the order claims lock in).
        await BoardItem.filter(id=item.id, claimed__gt=0).update(claimed=F("claimed") - 1)
        if not await BoardClaim.filter(id=claim.id, status__in=from_statuses).update(
            status=to_status, live_key=None
        ):
            raise BoardClaimStateInvalid()
        event = await _event(claim.id, to_status, actor)
        by = PUBLISHER_STEP if side == "publisher" else CLAIMANT_STEP
        await _notify(item, claim, event, actor=actor, by=by)
    return await _load_claim_view(claim.id, actor)


async def decline_claim(*, actor: User, claim_id: int) -> BoardClaimView:
    """The publisher turns down a pending claim; its place is free again."""
    return await _end_claim(
        actor=actor,
        claim_id=claim_id,
        side="publisher",
        from_statuses=("pending",),
        to_status="declined",
    )


async def cancel_claim(*, actor: User, claim_id: int) -> BoardClaimView:
    """The claimant withdraws a claim not yet done; its place is free again."""
    return await _end_claim(
        actor=actor,
        claim_id=claim_id,
        side="claimant",
        from_statuses=("pending", "confirmed"),
        to_status="cancelled",
    )


async def record_progress(*, actor: User, claim_id: int, note: str) -> BoardClaimView:
    """Either side notes how a confirmed claim is going (kept in its history)."""
    note = clean_text(
        note, field="note", label="进展", min_length=NOTE_MIN, max_length=NOTE_MAX, multiline=True
    )
    claim, item = await _load_claim(claim_id)
    sides = await _require(actor, item, claim, side="either")
    async with in_transaction():
        if not await BoardClaim.filter(id=claim.id, status="confirmed").update(progress_note=note):
            raise BoardClaimStateInvalid()
        event = await _event(claim.id, "progress", actor, note)
        await _notify(item, claim, event, actor=actor, by=sides)
    return await _load_claim_view(claim.id, actor)


async def mark_done(*, actor: User, claim_id: int) -> BoardClaimView:
    """Each side marks a confirmed claim done; it is done when both have."""
    claim, item = await _load_claim(claim_id)
    sides = await _require(actor, item, claim, side="either")
    now = clock.now()
    async with in_transaction():
        marked = 0
        if sides.publisher:
            marked += await BoardClaim.filter(
                id=claim.id, status="confirmed", publisher_done_at__isnull=True
            ).update(publisher_done_at=now)
        if sides.claimant:
            marked += await BoardClaim.filter(
                id=claim.id, status="confirmed", claimant_done_at__isnull=True
            ).update(claimant_done_at=now)
        if not marked:
            raise BoardClaimStateInvalid()
        event = await _event(claim.id, "marked_done", actor)
        if await BoardClaim.filter(
            id=claim.id,
            status="confirmed",
            publisher_done_at__isnull=False,
            claimant_done_at__isnull=False,
        ).update(status="done", done_at=now):
            event = await _event(claim.id, "done", actor)
        # One notice per call: the claim finished, or the other side is asked to finish it.
        await _notify(item, claim, event, actor=actor, by=sides)
    return await _load_claim_view(claim.id, actor)
