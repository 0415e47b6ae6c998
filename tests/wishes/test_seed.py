"""The demo seed's wishes and board items: made once, in the states the demo walks through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.core.db import close_db, init_db
from backend.seed import run_seed_demo
from backend.wishes.models import BoardItem, Wish


@pytest.fixture
async def empty_schema(settings) -> AsyncIterator[None]:
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    if not settings.is_sqlite:
        await connections.get("default").execute_script(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
        )
    await Tortoise.generate_schemas()
    await close_db()
    yield
    await close_db()


async def test_the_seed_makes_demo_wishes_and_board_items_once(settings, empty_schema) -> None:
    await run_seed_demo(settings)
    await run_seed_demo(settings)
    await init_db(settings)
    try:
        statuses = await Wish.all().order_by("id").values_list("title", "status")
        assert statuses == [
            ("想请人帮忙换个灯泡", "open"),
            ("孙子想参观科技馆", "claimed"),
            ("周末想去外滩看看夜景", "pending_review"),
        ]
        items = await BoardItem.all().order_by("id").values_list("kind", "title")
        assert items == [("need", "助老陪护"), ("need", "少儿科普讲座"), ("resource", "编程科普课")]
    finally:
        await close_db()
