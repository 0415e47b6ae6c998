"""Response bodies of the public organisation lists."""

from __future__ import annotations

from pydantic import Field

from backend.core.pagination import OutModel


class CommunityOut(OutModel):
    id: int
    slug: str
    name: str
    contact_name: str = Field(description="社区联系人（工作人员，公开的工作联系方式）")
    contact_phone: str = Field(description="社区联系人的工作电话")


class BuildingOut(OutModel):
    id: int
    slug: str
    name: str
    community_id: int | None
    address: str


class UnitOut(OutModel):
    id: int
    slug: str
    name: str
    community_id: int | None
