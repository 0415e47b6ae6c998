"""Request and response bodies of the accounts API (shapes from API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.accounts.models import RoleGrant
from backend.accounts.views import Profile
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.text import InModel

GrantableRole = Literal["party_member", "staff", "street_admin"]
# Ids as the columns hold them: org tables use 32-bit keys, users 64-bit.
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]
UserId = Annotated[int, Field(ge=1, le=MAX_ID)]
# The User.nickname column's length, so form, body and service refuse the same text.
NICKNAME_MAX = 64


class MiniProgramLoginIn(InModel):
    code: str = Field(min_length=1, max_length=128, description="wx.login() 返回的 code")


class RoleScope(BaseModel):
    role: str
    community_id: int | None = Field(description="社区范围；街道管理员为 null")


class UserOut(BaseModel):
    id: int
    nickname: str
    phone: str | None = Field(description="脱敏手机号，如 138****1234")
    roles: list[str]
    community_id: int | None
    building_id: int | None
    unit_id: int | None
    points_balance: int
    grants: list[RoleScope] = Field(description="授予的角色及其社区范围")

    @classmethod
    def of(cls, profile: Profile) -> UserOut:
        return cls(
            id=profile.id,
            nickname=profile.nickname,
            phone=profile.phone,
            roles=profile.roles,
            community_id=profile.community_id,
            building_id=profile.building_id,
            unit_id=profile.unit_id,
            points_balance=profile.points_balance,
            grants=[RoleScope(role=g.role, community_id=g.community_id) for g in profile.grants],
        )


class LoginOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


class ProfileUpdateIn(InModel):
    """Only the fields sent are changed; null clears phone, community, building or unit."""

    nickname: str | None = Field(default=None, max_length=NICKNAME_MAX)
    phone: str | None = Field(default=None, max_length=20)
    community_id: OrgId | None = None
    building_id: OrgId | None = None
    unit_id: OrgId | None = None


class GrantIn(InModel):
    user_id: UserId
    role: GrantableRole
    community_id: OrgId | None = Field(default=None, description="staff、party_member 必填")


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    role: str
    community_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, grant: RoleGrant) -> GrantOut:
        return cls.model_validate(grant)


class RevokeOut(BaseModel):
    revoked: bool
