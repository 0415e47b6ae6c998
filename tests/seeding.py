"""The demo seed under test: it opens and closes the database itself, so these tests start
from an empty schema with no connection held and open one only to look at the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.core.config import Settings
from backend.core.db import close_db, init_db
from backend.core.redis import close_kv, init_kv
from backend.seed import run_seed_demo


async def make_empty_schema(settings: Settings) -> None:
    """The current schema with no rows, and the connection closed again for the seed."""
    async with open_database(settings):
        if not settings.is_sqlite:
            await connections.get("default").execute_script(
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
            )
        await Tortoise.generate_schemas()


@asynccontextmanager
async def open_database(settings: Settings, *, kv: bool = False) -> AsyncIterator[None]:
    """The test's database (and with `kv` the key-value store), closed again on the way out."""
    # Tortoise caches SQL per connection name, not per dialect; tests alternate dialects.
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    if kv:
        init_kv(settings)
    try:
        yield
    finally:
        await close_db()
        if kv:
            await close_kv()


@asynccontextmanager
async def seeded_twice(settings: Settings, *, kv: bool = False) -> AsyncIterator[None]:
    """An empty schema seeded twice (the second run must add nothing), then open for checks."""
    await make_empty_schema(settings)
    await run_seed_demo(settings)
    await run_seed_demo(settings)
    async with open_database(settings, kv=kv):
        yield
