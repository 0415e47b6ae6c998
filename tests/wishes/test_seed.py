"""The demo seed's wishes and board items: made once, in the states the demo walks through."""

from __future__ import annotations

from backend.orgs.models import Community
from backend.wishes.models import BoardItem, Wish
from tests.seeding import seeded_twice


async def test_the_seed_makes_demo_wishes_and_board_items_once(settings) -> None:
    async with seeded_twice(settings):
        statuses = await Wish.all().order_by("id").values_list("title", "status")
        assert statuses == [
            ("想请人帮忙换个灯泡", "open"),
            ("孙子想参观科技馆", "claimed"),
            ("周末想去外滩看看夜景", "pending_review"),
        ]
        items = await BoardItem.all().order_by("id").values_list("kind", "title")
        assert items == [("need", "助老陪护"), ("need", "少儿科普讲座"), ("resource", "编程科普课")]
        # Every demo community has a staff contact and a work landline for claimers.
        contacts = await Community.all().values_list("contact_name", "contact_phone")
        assert len(contacts) == 4
        assert all(name.endswith("社工") and phone.startswith("021-") for name, phone in contacts)
