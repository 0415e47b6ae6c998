"""Small factories for tests: create exactly what a test needs, with readable defaults.

Use them inside tests that have the `db` (or `client`) fixture:

    community = await make_community(slug="a")
    staff = await make_user(community=community, roles=["staff"])
    response = await client.get("/api/v1/me", headers=auth_headers(staff))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from backend.accounts import service as accounts_service
from backend.accounts.models import User, WechatIdentity
from backend.core.config import get_settings
from backend.core.security import blind_index, encrypt_field
from backend.orgs.models import Building, Community, Street, Unit

_seq = itertools.count(1)


def _next() -> int:
    return next(_seq)


async def make_street(*, slug: str = "test-street", name: str = "测试街道") -> Street:
    street, _ = await Street.get_or_create(slug=slug, defaults={"name": name})
    return street


async def make_community(
    *, slug: str | None = None, name: str | None = None, street: Street | None = None
) -> Community:
    n = _next()
    return await Community.create(
        street=street or await make_street(),
        slug=slug or f"community-{n}",
        name=name or f"测试社区{n}",
    )


async def make_building(
    *, slug: str | None = None, name: str | None = None, community: Community | None = None
) -> Building:
    n = _next()
    return await Building.create(
        street_id=community.street_id if community else (await make_street()).id,
        community=community,
        slug=slug or f"building-{n}",
        name=name or f"测试楼宇{n}",
    )


async def make_unit(
    *, slug: str | None = None, name: str | None = None, community: Community | None = None
) -> Unit:
    n = _next()
    return await Unit.create(
        street_id=community.street_id if community else (await make_street()).id,
        community=community,
        slug=slug or f"unit-{n}",
        name=name or f"测试单位{n}",
    )


async def make_user(
    *,
    nickname: str | None = None,
    community: Community | None = None,
    building: Building | None = None,
    unit: Unit | None = None,
    phone: str | None = None,
    persona: str | None = None,
    points_balance: int = 0,
    roles: Iterable[str] = (),
    openid: str | None = None,
    unionid: str | None = None,
) -> User:
    """A user with a mini-program identity; `roles` (party_member, staff) are granted in
    `community`, street_admin street-wide."""
    n = _next()
    user = await User.create(
        nickname=nickname or f"用户{n}",
        community=community,
        building=building,
        unit=unit,
        phone_encrypted=encrypt_field(phone) if phone else None,
        phone_index=blind_index(phone) if phone else None,
        persona=persona,
        points_balance=points_balance,
        unionid=unionid,
    )
    await WechatIdentity.create(
        user=user,
        kind="miniprogram",
        app_id=get_settings().mp_appid,
        openid=openid or f"openid-{n}",
        unionid=unionid,
    )
    for role in roles:
        await accounts_service.grant_role(
            actor=None,
            user_id=user.id,
            role=role,
            community_id=None if role == "street_admin" else (community.id if community else None),
        )
    return user


def auth_headers(user: User) -> dict[str, str]:
    """Bearer headers for `user` (as the mini-program sends them)."""
    return {"Authorization": f"Bearer {accounts_service.issue_access_token(user_id=user.id)}"}


def session_cookies(user: User) -> dict[str, str]:
    """The H5 session cookie for `user`."""
    return {accounts_service.SESSION_COOKIE: accounts_service.issue_session_token(user_id=user.id)}
