"""Which communities a staff page may show: one helper for every staff page.

A street admin runs every community, a community's staff only their own. A page lists the
communities in its switcher and works on the chosen one:

    scope = await staff_scope(user, refuse="只有社区工作人员可以发布活动")
    community = scope.pick(community_id)            # the asked-for one, else the first
    community = scope.pick(community_id, strict=True)  # Forbidden when not the user's
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.errors import Forbidden
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.orgs import service as orgs_service
from backend.orgs.models import Community

_ALL = PageRequest(limit=MAX_LIMIT)
STAFF_ONLY = "只有社区工作人员可以进入工作台"


@dataclass(frozen=True)
class StaffScope:
    communities: list[Community]

    @property
    def ids(self) -> set[int]:
        return {c.id for c in self.communities}

    def pick(self, community_id: int | None, *, strict: bool = False) -> Community:
        """The community asked for when the user runs it, else the first one; with
        `strict`, asking for another community is Forbidden instead."""
        for community in self.communities:
            if community.id == community_id:
                return community
        if strict and community_id is not None:
            raise Forbidden("只有本社区的工作人员可以进行此操作")
        return self.communities[0]


async def staff_scope(user: User, *, refuse: str = STAFF_ONLY) -> StaffScope:
    """The communities `user` runs, in id order; Forbidden with `refuse` when none."""
    allowed = await accounts_service.staff_community_ids(user)
    communities = (await orgs_service.list_communities(page=_ALL)).items
    if allowed is not None:
        chosen = set(allowed)
        communities = [c for c in communities if c.id in chosen]
    if not communities:
        raise Forbidden(refuse)
    return StaffScope(communities=communities)
