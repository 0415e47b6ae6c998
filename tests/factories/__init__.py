"""The one set of test factories: create exactly what a test needs, with readable defaults.

This module holds places and people; `tests/factories/<domain>.py` what a domain adds
(activities, posts, wishes, rewards, notices), each made through the domain's own service
so a test starts from states the product can reach. Use them inside tests that have the
`db` (or `client`) fixture:

    community = await make_community(slug="a")
    staff = await make_staff(community)
    response = await client.get("/api/v1/me", headers=auth_headers(staff))

`Neighbourhood` is the one scenario: a street with two communities and one person of
every kind, for tests that need several people at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from backend.accounts import service as accounts_service
from backend.accounts.models import User, WechatIdentity
from backend.core.config import get_settings
from backend.core.security import blind_index, encrypt_field
from backend.orgs.models import Building, Community, Street, Unit

_seq = itertools.count(1)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """An aware Shanghai wall-clock time, e.g. local(2026, 3, 1, 23, 0)."""
    return datetime(*args, tzinfo=SHANGHAI)


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
    *,
    slug: str | None = None,
    name: str | None = None,
    community: Community | None = None,
    street: Street | None = None,
) -> Building:
    n = _next()
    return await Building.create(
        street_id=community.street_id if community else (street or await make_street()).id,
        community=community,
        slug=slug or f"building-{n}",
        name=name or f"测试楼宇{n}",
    )


async def make_unit(
    *,
    slug: str | None = None,
    name: str | None = None,
    community: Community | None = None,
    street: Street | None = None,
) -> Unit:
    n = _next()
    return await Unit.create(
        street_id=community.street_id if community else (street or await make_street()).id,
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


async def make_staff(community: Community, **fields) -> User:
    """A staff member (社区工作人员) of `community`."""
    return await make_user(community=community, roles=["staff"], **fields)


async def make_street_admin(**fields) -> User:
    """A street admin (街道管理员): runs every community."""
    return await make_user(roles=["street_admin"], **fields)


async def make_party_member(community: Community, **fields) -> User:
    """A user holding the party_member role in `community` (without a report-in record:
    tests/factories/party.py makes members through the real report-in and review)."""
    return await make_user(community=community, roles=["party_member"], **fields)


# The community office's contact, shown to a wish's claimer before the poster accepts.
COMMUNITY_CONTACT = ("陈社工", "021-62530101")
RESIDENT_PHONE = "13912345678"


@dataclass
class Neighbourhood:
    """One street, two communities and one person of every kind.

    `community` (大田社区, with its office contact) holds a building, a school unit and
    most people; `other_community` (新闸社区) a building, a unit, a resident and its own
    staff; `street_building` belongs to no community. Only `resident` and `newcomer` are
    demo personas (the H5 login page's), so `login_as("resident")` is the resident.
    """

    street: Street
    community: Community
    other_community: Community
    building: Building
    other_building: Building
    street_building: Building
    unit: Unit
    other_unit: Unit
    resident: User  # 王阿姨, community, with a phone
    neighbour: User  # 李师傅, community, with a phone
    party_member: User  # 王党员, community, the party_member role
    worker: User  # works in `building`
    street_worker: User  # works in `street_building`
    unit_member: User  # 赵老师, of `unit`
    other_resident: User
    other_worker: User
    staff: User  # 陈社工, staff of community
    other_staff: User  # 钱社工, staff of other_community
    street_admin: User  # 周主任
    newcomer: User  # 新邻居, persona, belongs nowhere yet

    @staticmethod
    def ids(*users: User) -> set[int]:
        return {u.id for u in users}


async def make_neighbourhood() -> Neighbourhood:
    street = await make_street(slug="shimen2", name="石门二路街道")
    community = await make_community(slug="datian", name="大田社区", street=street)
    community.contact_name, community.contact_phone = COMMUNITY_CONTACT
    await community.save()
    other = await make_community(slug="xinzha", name="新闸社区", street=street)
    building = await make_building(slug="tower", name="中凯大厦", community=community)
    building.address = "石门二路 1 号"
    await building.save()
    unit = await make_unit(slug="school", name="育才学校", community=community)
    other_building = await make_building(community=other)
    street_building = await make_building(community=None, street=street)
    other_unit = await make_unit(community=other)
    return Neighbourhood(
        street=street,
        community=community,
        other_community=other,
        building=building,
        other_building=other_building,
        street_building=street_building,
        unit=unit,
        other_unit=other_unit,
        resident=await make_user(
            nickname="王阿姨", community=community, phone=RESIDENT_PHONE, persona="resident"
        ),
        neighbour=await make_user(nickname="李师傅", community=community, phone="13700001111"),
        party_member=await make_party_member(community, nickname="王党员", phone="13600002222"),
        worker=await make_user(nickname="孙白领", building=building),
        street_worker=await make_user(building=street_building),
        unit_member=await make_user(nickname="赵老师", unit=unit, phone="13500003333"),
        other_resident=await make_user(nickname="吴阿姨", community=other),
        other_worker=await make_user(building=other_building),
        staff=await make_staff(community, nickname="陈社工"),
        other_staff=await make_staff(other, nickname="钱社工"),
        street_admin=await make_street_admin(nickname="周主任"),
        newcomer=await make_user(nickname="新邻居", persona="newcomer"),
    )


def auth_headers(user: User) -> dict[str, str]:
    """Bearer headers for `user` (as the mini-program sends them)."""
    return {"Authorization": f"Bearer {accounts_service.issue_access_token(user_id=user.id)}"}


def session_cookies(user: User) -> dict[str, str]:
    """The H5 session cookie for `user`."""
    return {accounts_service.SESSION_COOKIE: accounts_service.issue_session_token(user_id=user.id)}
