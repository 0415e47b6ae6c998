"""TEST ONLY: the control case of the post-claim race tests (tests/concurrency), never
reachable in prod: posts.py asks `backend.core.unguarded.enabled("post_claim")` once and
then claims here instead, with no row lock and no term key."""

from __future__ import annotations

import asyncio

from backend.accounts.models import User
from backend.core.clock import clock
from backend.party.exceptions import AlreadyHasPost, NotPartyMember, PostFull
from backend.party.models import PartyRegistration, PostAssignment, ServicePost


async def race_window() -> None:
    # Long enough that every claim of a burst has read before the first one writes; the
    # lockstep control test puts a barrier here instead.
    await asyncio.sleep(0.05)


async def take_post_in_tx(
    *, post: ServicePost, user_id: int, assigned_by: User | None
) -> PostAssignment:
    """Read whether the member may serve, holds a post this term and how full the post is,
    pause, check, then write back what was read: nothing else stops the race."""
    if not await PartyRegistration.exists(
        active_key=f"u{user_id}", community_id=post.community_id, status="approved"
    ):
        if assigned_by is not None:
            raise NotPartyMember("该居民不是本社区已报到的党员，不能分配岗位")
        raise NotPartyMember()
    holds = await PostAssignment.exists(user_id=user_id, term=post.term, status="active")
    taken, capacity = await ServicePost.get(id=post.id).values_list("taken", "capacity")
    await race_window()
    if holds:
        raise AlreadyHasPost()
    if taken >= capacity:
        raise PostFull()
    await ServicePost.filter(id=post.id).update(taken=taken + 1)
    return await PostAssignment.create(
        post_id=post.id,
        user_id=user_id,
        community_id=post.community_id,
        term=post.term,
        status="active",
        term_key=None,
        assigned_by_id=assigned_by.id if assigned_by else None,
        started_at=clock.now(),
    )
