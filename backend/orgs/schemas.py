from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# Communities, buildings and units have 32-bit ids: larger filters could never match.


class CommunityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str


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
