"""The street's organisation: communities, office buildings (楼宇) and resident units (驻区单位)."""

from __future__ import annotations

from backend.core.errors import NotFound
from backend.core.pagination import Page, PageRequest, paginate
from backend.orgs.models import Building, Community, Street, Unit


async def get_street(*, slug: str) -> Street:
    """The street with this slug, or NotFound."""
    street = await Street.get_or_none(slug=slug)
    if street is None:
        raise NotFound("街道不存在")
    return street


async def list_communities(*, page: PageRequest) -> Page[Community]:
    """Communities in id order, one page at a time."""
    return await paginate(Community.all(), page)


async def get_community(*, community_id: int) -> Community:
    """The community with this id, or NotFound."""
    community = await Community.get_or_none(id=community_id)
    if community is None:
        raise NotFound("社区不存在")
    return community


async def get_community_by_slug(*, slug: str) -> Community:
    """The community with this slug, or NotFound."""
    community = await Community.get_or_none(slug=slug)
    if community is None:
        raise NotFound("社区不存在")
    return community


async def list_buildings(*, page: PageRequest, community_id: int | None = None) -> Page[Building]:
    """Office buildings in id order, optionally of one community."""
    query = Building.all() if community_id is None else Building.filter(community_id=community_id)
    return await paginate(query, page)


async def get_building(*, building_id: int) -> Building:
    """The building with this id, or NotFound."""
    building = await Building.get_or_none(id=building_id)
    if building is None:
        raise NotFound("楼宇不存在")
    return building


async def list_units(*, page: PageRequest, community_id: int | None = None) -> Page[Unit]:
    """Resident units in id order, optionally of one community."""
    query = Unit.all() if community_id is None else Unit.filter(community_id=community_id)
    return await paginate(query, page)


async def get_unit(*, unit_id: int) -> Unit:
    """The resident unit with this id, or NotFound."""
    unit = await Unit.get_or_none(id=unit_id)
    if unit is None:
        raise NotFound("驻区单位不存在")
    return unit
