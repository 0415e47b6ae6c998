"""Accounts API: mini-program login, the caller's profile, role grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.accounts import service
from backend.accounts.deps import CurrentUser, StreetAdmin
from backend.accounts.schemas import (
    GrantableRole,
    GrantIn,
    GrantOut,
    LoginOut,
    MiniProgramLoginIn,
    OrgId,
    ProfileUpdateIn,
    RevokeOut,
    UserId,
    UserOut,
)
from backend.core.errors import error_schema, responses

router = APIRouter(tags=["accounts"])


@router.post(
    "/auth/miniprogram/login",
    response_model=LoginOut,
    summary="小程序登录：wx.login 的 code 换取 token",
    description="401：wechat_login_failed（微信拒绝了 code）；502：wechat_unavailable"
    "（微信无法连接或答复不合规范）。",
    responses={
        **responses(401, 409, 422, 429),
        401: error_schema("unauthenticated", "wechat_login_failed"),
        502: error_schema("wechat_unavailable"),
    },
)
async def miniprogram_login(body: MiniProgramLoginIn) -> LoginOut:
    token, expires_in, user = await service.login_miniprogram(code=body.code)
    return LoginOut(
        token=token, expires_in=expires_in, user=UserOut.of(await service.describe_user(user=user))
    )


@router.post(
    "/auth/logout",
    status_code=204,
    summary="退出登录：本人所有设备上的登录（小程序 token 与 H5 会话）立即失效",
    responses=responses(401, 429),
)
async def logout(user: CurrentUser) -> Response:
    await service.logout(user=user)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, summary="当前用户", responses=responses(401, 429))
async def get_me(user: CurrentUser) -> UserOut:
    return UserOut.of(await service.describe_user(user=user))


@router.patch(
    "/me",
    response_model=UserOut,
    summary="修改个人资料",
    responses=responses(401, 422, 429),
)
async def patch_me(body: ProfileUpdateIn, user: CurrentUser) -> UserOut:
    updated = await service.update_profile(user=user, **body.model_dump(exclude_unset=True))
    return UserOut.of(await service.describe_user(user=updated))


@router.post(
    "/admin/grants",
    status_code=201,
    response_model=GrantOut,
    summary="授予角色（街道管理员）",
    responses=responses(401, 403, 404, 422, 429),
)
async def create_grant(body: GrantIn, admin: StreetAdmin) -> GrantOut:
    grant = await service.grant_role(
        actor=admin, user_id=body.user_id, role=body.role, community_id=body.community_id
    )
    return GrantOut.of(grant)


@router.delete(
    "/admin/grants",
    response_model=RevokeOut,
    summary="收回角色（街道管理员）：对方已有的登录随即失效",
    responses=responses(401, 403, 404, 422, 429),
)
async def delete_grant(
    admin: StreetAdmin,
    user_id: Annotated[UserId, Query()],
    role: Annotated[GrantableRole, Query()],
    community_id: Annotated[OrgId | None, Query()] = None,
) -> RevokeOut:
    revoked = await service.revoke_role(
        actor=admin, user_id=user_id, role=role, community_id=community_id
    )
    return RevokeOut(revoked=revoked)
