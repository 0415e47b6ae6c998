"""Who and what an id names, for lists and notices: members, posts, communities."""

from __future__ import annotations

from collections.abc import Iterable

from backend.accounts.models import User
from backend.orgs.models import Community
from backend.party.models import PartyRegistration, ServicePost


async def member_names(user_ids: Iterable[int]) -> dict[int, str]:
    """User id → the name on their latest registration (nickname if none)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    names = dict(await User.filter(id__in=ids).values_list("id", "nickname"))
    for user_id, name in (
        await PartyRegistration.filter(user_id__in=ids)
        .order_by("id")
        .values_list("user_id", "name")
    ):
        names[user_id] = name
    return names


async def post_titles(post_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in post_ids if i is not None}
    return dict(await ServicePost.filter(id__in=ids).values_list("id", "title")) if ids else {}


async def community_names(ids: Iterable[int]) -> dict[int, str]:
    """Community id → name for the ids given."""
    wanted = {i for i in ids if i is not None}
    rows = await Community.filter(id__in=wanted).values_list("id", "name") if wanted else []
    return dict(rows)
