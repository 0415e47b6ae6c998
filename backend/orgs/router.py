"""Public lists of the street's communities, office buildings and resident units."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.core.errors import responses
from backend.core.ids import MAX_ORG_ID
from backend.core.pagination import PageOut, PageParams
from backend.orgs import service
from backend.orgs.schemas import BuildingOut, CommunityOut, UnitOut

router = APIRouter(tags=["orgs"])

CommunityFilter = Annotated[int | None, Query(ge=1, le=MAX_ORG_ID, description="只看某个社区")]


@router.get("/communities", response_model=PageOut[CommunityOut], responses=responses(422, 429))
async def list_communities(page: PageParams) -> PageOut[CommunityOut]:
    result = await service.list_communities(page=page)
    return CommunityOut.page(result)


@router.get("/buildings", response_model=PageOut[BuildingOut], responses=responses(422, 429))
async def list_buildings(
    page: PageParams, community_id: CommunityFilter = None
) -> PageOut[BuildingOut]:
    result = await service.list_buildings(page=page, community_id=community_id)
    return BuildingOut.page(result)


@router.get("/units", response_model=PageOut[UnitOut], responses=responses(422, 429))
async def list_units(page: PageParams, community_id: CommunityFilter = None) -> PageOut[UnitOut]:
    result = await service.list_units(page=page, community_id=community_id)
    return UnitOut.page(result)
