"""H5 test helpers: demo personas made through the models, and form-token scraping."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from backend.accounts.models import User
from backend.orgs.models import Building, Community, Street, Unit

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Demo:
    community: Community
    other_community: Community
    building: Building
    unit: Unit
    resident: User
    newcomer: User


@pytest.fixture
async def demo(db: None) -> Demo:
    street = await Street.create(slug="shimen2", name="石门二路街道")
    community = await Community.create(street=street, slug="datian", name="大田社区")
    other = await Community.create(street=street, slug="xinzha", name="新闸社区")
    building = await Building.create(
        street=street, community=community, slug="tower", name="中凯大厦", address="石门二路 1 号"
    )
    unit = await Unit.create(street=street, community=community, slug="school", name="育才学校")
    resident = await User.create(nickname="王阿姨", persona="resident", community=community)
    newcomer = await User.create(nickname="新邻居", persona="newcomer")
    return Demo(community, other, building, unit, resident, newcomer)


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


async def login_as(client: httpx.AsyncClient, persona: str, next_path: str = "/h5/") -> None:
    page = await client.get("/h5/login")
    response = await client.post(
        "/h5/login/persona",
        data={"csrf_token": csrf_token(page.text), "persona": persona, "next": next_path},
    )
    assert response.status_code == 303, response.text
