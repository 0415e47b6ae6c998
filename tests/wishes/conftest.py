"""A small street for wish tests: two communities, a unit, and one person per role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from backend.accounts.models import User
from backend.orgs.models import Community, Unit
from backend.wishes import service
from backend.wishes.schemas import WishDetailOut
from tests.factories import make_community, make_unit, make_user

POSTER_PHONE = "13912345678"
POSTER_PHONE_MASKED = "139****5678"
COMMUNITY_CONTACT = ("陈社工", "021-62530101")


@dataclass
class World:
    community: Community
    other_community: Community
    unit: Unit
    poster: User
    neighbour: User
    party_member: User
    unit_member: User
    staff: User
    other_staff: User
    street_admin: User
    newcomer: User


# Room for tests that post and claim many wishes with one person; the caps' own tests set
# the real limits back (see tight_caps in test_trust.py).
ROOMY_CAPS = {
    "LINLI_WISHES_PER_DAY": "100",
    "LINLI_WISH_CLAIMS_PER_DAY": "100",
    "LINLI_BOARD_ITEMS_PER_DAY": "1000",
}


@pytest.fixture(autouse=True)
def roomy_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse runs before the settings fixture, which reads the environment afresh.
    for key, value in ROOMY_CAPS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def world(db: None) -> World:
    return await make_world()


async def make_world() -> World:
    """Two communities (the first with its staff contact), a unit in the first, and one
    person in each role."""
    community = await make_community(name="大田社区")
    community.contact_name, community.contact_phone = COMMUNITY_CONTACT
    await community.save()
    other = await make_community(name="新闸社区")
    unit = await make_unit(name="育才学校", community=community)
    return World(
        community=community,
        other_community=other,
        unit=unit,
        poster=await make_user(nickname="张阿姨", community=community, phone=POSTER_PHONE),
        neighbour=await make_user(nickname="李师傅", community=community, phone="13700001111"),
        party_member=await make_user(
            nickname="王党员", community=other, roles=["party_member"], phone="13600002222"
        ),
        unit_member=await make_user(nickname="赵老师", unit=unit, phone="13500003333"),
        staff=await make_user(nickname="陈社工", community=community, roles=["staff"]),
        other_staff=await make_user(nickname="钱社工", community=other, roles=["staff"]),
        street_admin=await make_user(nickname="周主任", roles=["street_admin"]),
        newcomer=await make_user(nickname="新邻居"),
    )


async def post_wish(
    world: World,
    *,
    title: str = "想请人陪我去医院复诊",
    description: str = "周五上午去瑞金医院复诊，需要有人陪同。",
    needed_by: date | None = None,
    address: str = "大田社区 5 号楼",
    contact_via: str = "direct",
) -> WishDetailOut:
    return await service.submit_wish(
        user=world.poster,
        community_id=world.community.id,
        title=title,
        description=description,
        category="助老助残",
        needed_by=needed_by,
        address=address,
        contact_via=contact_via,
    )


async def open_wish(world: World, **kwargs) -> WishDetailOut:
    """A wish posted by the poster and approved by staff."""
    wish = await post_wish(world, **kwargs)
    return await service.review_wish(actor=world.staff, wish_id=wish.id, approve=True)
