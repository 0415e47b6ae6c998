"""Staff adjustments: a correction of a resident's points, found by phone number or id."""

from __future__ import annotations

import logging
import uuid

from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import NotFound
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import blind_index, mask_name
from backend.core.text import normalise_phone
from backend.points.exceptions import CapReached, PhoneAmbiguous
from backend.points.ledger import SOURCE_ADJUSTMENT, change_balance_in_tx
from backend.points.models import PointsLedgerEntry
from backend.points.rules import claim_cap_room, rule_terms
from backend.points.schemas import AdjustmentIn
from backend.points.views import EVENT_STAFF_ADJUSTMENT

log = logging.getLogger("linli.points")

# People named when a phone number matches several: enough to choose from, never a list.
PHONE_CANDIDATES = 5


async def adjust_points(*, actor: User, data: AdjustmentIn) -> PointsLedgerEntry:
    """A correction by staff of the user's community or a street admin, never below zero,
    and within the staff-adjustment rule's caps (the model has bounded the amount and the
    reason)."""
    user_id, delta = data.user_id, data.delta
    target = await User.get_or_none(id=user_id)
    if target is None:
        raise NotFound("用户不存在")
    await accounts_service.require_staff_of(actor, target.community_id)
    rule_id = None
    async with in_transaction():
        if delta > 0:
            now = clock.now()
            terms = await rule_terms(event_type=EVENT_STAFF_ADJUSTMENT, at=now)
            rule_id = terms.rule_id
            if await claim_cap_room(user_id=user_id, terms=terms, amount=delta, at=now) < delta:
                raise CapReached("超过了每人每日或每月可调整的积分上限")
        entry = await change_balance_in_tx(
            user_id=user_id,
            delta=delta,
            source_type=SOURCE_ADJUSTMENT,
            source_id=uuid.uuid4().hex,
            reason=data.reason,
            actor_id=actor.id,
            rule_id=rule_id,
        )
    assert entry is not None  # a fresh source id cannot have been recorded before
    log.info(
        "points adjusted by user %s: %+d (ledger entry %s)",
        actor.id,
        delta,
        entry.id,
        extra={"user_id": user_id},
    )
    return entry


async def _by_phone(actor: User, phone: str) -> User | None:
    # One number may be registered by several people (a family's shared phone). Among those
    # the staff member may act for, a choice would be a guess: they choose by number instead.
    query = User.filter(phone_index=blind_index(phone)).order_by("id")
    scope = await accounts_service.staff_community_ids(actor)
    mine = await (query if scope is None else query.filter(community_id__in=scope)).limit(
        PHONE_CANDIDATES + 1
    )
    if len(mine) > 1:
        named = [f"编号 {u.id}（{mask_name(u.nickname)}）" for u in mine[:PHONE_CANDIDATES]]
        more = "等" if len(mine) > PHONE_CANDIDATES else ""
        raise PhoneAmbiguous(
            f"这个手机号登记了多位居民：{'、'.join(named)}{more}，请改填其中一位的居民编号"
        )
    # Someone outside the staff member's communities is found, so that they are told why not.
    return mine[0] if mine else await query.first()


async def find_resident(*, actor: User, query: str) -> User:
    """The user a staff member means by an id or a phone number, if they may adjust them;
    a phone number several of their residents share is refused as ambiguous."""
    phone = normalise_phone(query)
    user = await _by_phone(actor, phone) if phone else None
    text = "".join(query.split())
    if user is None and text.isdigit() and len(text) <= 18:
        user = await User.get_or_none(id=int(text))
    if user is None:
        raise NotFound("没有找到这位居民，请核对手机号或编号")
    await accounts_service.require_staff_of(actor, user.community_id)
    return user


async def list_adjustments(
    *, actor: User, community_id: int | None, page: PageRequest
) -> Page[PointsLedgerEntry]:
    """Staff adjustments in a community (all of them for a street admin), newest first."""
    await accounts_service.require_staff_of(actor, community_id)
    query = PointsLedgerEntry.filter(source_type=SOURCE_ADJUSTMENT)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    return await paginate(query, page, descending=True)
