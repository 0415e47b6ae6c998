from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Communities, buildings and units have 32-bit ids: larger filters could never match.


class CommunityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    contact_name: str = Field(description="社区联系人（工作人员，公开的工作联系方式）")
    contact_phone: str = Field(description="社区联系人的工作电话")


class BuildingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    community_id: int | None
    address: str


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    community_id: int | None
