"""Lists of wishes: the public wall, one's own wishes and claims, the staff queue and the
unit credits of staff reports."""

from __future__ import annotations

from tortoise.functions import Count

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.errors import Forbidden, Invalid
from backend.core.pagination import Page, PageRequest, paginate
from backend.wishes.contacts import Access, describe, sees_contact, summarize, wishes
from backend.wishes.models import PUBLIC_STATUSES, WISH_CATEGORIES, Wish
from backend.wishes.views import UnitCredit, WishDetail, WishSummary


async def list_wishes(
    *,
    page: PageRequest,
    community_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
) -> Page[WishSummary]:
    """Reviewed wishes for the public board, newest first, masked."""
    if status is not None and status not in PUBLIC_STATUSES:
        raise Invalid(fields={"status": "取值不在允许范围内"})
    if category is not None and category not in WISH_CATEGORIES:
        raise Invalid(fields={"category": "取值不在允许范围内"})
    query = wishes().filter(status__in=[status] if status else PUBLIC_STATUSES)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if category:
        query = query.filter(category=category)
    result = await paginate(query, page, descending=True)
    return Page[WishSummary](
        items=[summarize(w) for w in result.items], next_cursor=result.next_cursor
    )


async def list_my_wishes(*, user: User, page: PageRequest) -> Page[WishSummary]:
    """The wishes `user` posted, in every status, newest first."""
    result = await paginate(wishes().filter(poster_id=user.id), page, descending=True)
    return Page[WishSummary](
        items=[summarize(w, redact=False) for w in result.items], next_cursor=result.next_cursor
    )


async def list_my_claims(*, user: User, page: PageRequest) -> Page[WishSummary]:
    """The wishes `user` claims or has fulfilled, newest first."""
    result = await paginate(wishes().filter(claimer_id=user.id), page, descending=True)
    items = []
    for wish in result.items:
        access = Access(user, poster=False, claimer=True, staff=False, may_claim=False)
        items.append(summarize(wish, redact=not sees_contact(wish, access)))
    return Page[WishSummary](items=items, next_cursor=result.next_cursor)


async def staff_scope(*, actor: User, community_id: int | None = None) -> list[int] | None:
    """The communities `actor` may see as staff, narrowed to `community_id` when given."""
    if community_id is not None:
        await accounts_service.require_staff_of(actor, community_id)
        return [community_id]
    communities = await accounts_service.staff_community_ids(actor)
    if communities == []:
        raise Forbidden("只有社区工作人员可以查看")
    return communities


async def list_staff_wishes(
    *, actor: User, page: PageRequest, community_id: int | None = None, status: str | None = None
) -> Page[WishDetail]:
    """Wishes of the communities `actor` is staff of (oldest first: a review queue)."""
    communities = await staff_scope(actor=actor, community_id=community_id)
    query = wishes()
    if communities is not None:
        query = query.filter(community_id__in=communities)
    if status is not None:
        query = query.filter(status=status)
    result = await paginate(query, page)
    items = []
    for wish in result.items:
        access = Access(
            actor,
            poster=wish.poster_id == actor.id,
            claimer=wish.claimer_id == actor.id,
            staff=True,
            may_claim=False,
        )
        items.append(await describe(wish, access, with_history=False))
    return Page[WishDetail](items=items, next_cursor=result.next_cursor)


async def unit_credits(*, actor: User, community_id: int | None = None) -> list[UnitCredit]:
    """Wishes claimed on behalf of each resident unit, by status (staff reports)."""
    communities = await staff_scope(actor=actor, community_id=community_id)
    query = Wish.filter(
        claimer_unit_id__isnull=False, status__in=("claimed", "fulfilled", "closed")
    )
    if communities is not None:
        query = query.filter(community_id__in=communities)
    rows = (
        await query.annotate(n=Count("id"))
        .group_by("claimer_unit_id", "claimer_unit__name", "status")
        .values("claimer_unit_id", "claimer_unit__name", "status", "n")
    )
    credits: dict[int, UnitCredit] = {}
    for row in rows:
        credit = credits.setdefault(
            row["claimer_unit_id"],
            UnitCredit(unit_id=row["claimer_unit_id"], unit_name=row["claimer_unit__name"]),
        )
        setattr(credit, row["status"], getattr(credit, row["status"]) + row["n"])
    return sorted(credits.values(), key=lambda c: (-c.closed, -c.fulfilled, c.unit_id))
