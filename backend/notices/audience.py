"""Who a notice reaches, as one filter on users (subqueries, no joins: each user appears once).

The fan-out walks this filter in user-id order a batch at a time, so the audience is never
held in memory, and the preview counts it with the same filter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tortoise.expressions import Q, Subquery

from backend.accounts.models import RoleGrant
from backend.activities import models as activities_models
from backend.orgs.models import Building, Community, Unit

ROLE_AUDIENCES = ("residents", "party_members", "workers", "unit_members")


@dataclass(frozen=True)
class Audience:
    """A notice's audience: where (community, else the whole street) and whom."""

    street_id: int
    community_id: int | None
    audience: str
    building_ids: tuple[int, ...] = ()
    unit_ids: tuple[int, ...] = ()
    activity_id: int | None = None


def _in_scope(model: type, audience: Audience) -> Q:
    """Rows of `model` (Community, Building, Unit) inside the notice's community or street."""
    if model is Community:
        if audience.community_id is not None:
            return Q(id=audience.community_id)
        return Q(street_id=audience.street_id)
    if audience.community_id is not None:
        return Q(community_id=audience.community_id)
    return Q(street_id=audience.street_id)


def _scoped_ids(model: type, audience: Audience) -> Subquery:
    return Subquery(model.filter(_in_scope(model, audience)).values("id"))


def _role_filter(audience: Audience, *, scoped: bool) -> Q:
    """Holders of the audience's role, inside the notice's community or street when `scoped`."""
    kind = audience.audience
    if kind == "residents":
        if not scoped:
            return Q(community_id__isnull=False)
        return Q(community_id__in=_scoped_ids(Community, audience))
    if kind == "party_members":
        grants = RoleGrant.filter(role="party_member")
        if scoped:
            grants = grants.filter(community_id__in=_scoped_ids(Community, audience))
        return Q(id__in=Subquery(grants.values("user_id")))
    if kind == "workers":
        if audience.building_ids:
            return Q(building_id__in=list(audience.building_ids))
        if not scoped:
            return Q(building_id__isnull=False)
        return Q(building_id__in=_scoped_ids(Building, audience))
    if kind == "unit_members":
        if audience.unit_ids:
            return Q(unit_id__in=list(audience.unit_ids))
        if not scoped:
            return Q(unit_id__isnull=False)
        return Q(unit_id__in=_scoped_ids(Unit, audience))
    raise ValueError(f"unknown audience {kind!r}")


def user_filter(audience: Audience) -> Q:
    """The users a notice with this audience reaches."""
    if audience.activity_id is not None:
        # Bookers may come from other communities and buildings: the activity, not the
        # notice's community, bounds who is reached, and the role only narrows it.
        bookings = activities_models.Booking.filter(
            activity_id=audience.activity_id, status__in=activities_models.LIVE_STATUSES
        )
        booked = Q(id__in=Subquery(bookings.values("user_id")))
        if audience.audience == "all":
            return booked
        return booked & _role_filter(audience, scoped=False)
    if audience.audience != "all":
        return _role_filter(audience, scoped=True)
    parts = [replace(audience, audience=kind) for kind in ROLE_AUDIENCES]
    return Q(*(_role_filter(part, scoped=True) for part in parts), join_type="OR")


def reaches_whole_community(audience: Audience) -> bool:
    """Whether the notice is for everyone there (then the community's group robot gets it)."""
    return (
        audience.audience == "all"
        and not audience.building_ids
        and not audience.unit_ids
        and audience.activity_id is None
    )
