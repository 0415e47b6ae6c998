"""Tortoise ORM wiring: one app label, SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url

from backend.core.config import Settings

APP_LABEL = "linli"

# Every domain's models module; the migrations in backend/migrations cover all of them.
MODEL_MODULES = [
    "backend.core.models",
    "backend.orgs.models",
    "backend.accounts.models",
    "backend.points.models",
    "backend.notices.models",
    "backend.wishes.models",
    "backend.activities.models",
    "backend.party.models",
]


async def _release_as_is(connection: Any) -> None:
    """asyncpg's default release sends RESET ALL, UNLISTEN, CLOSE ALL and an advisory
    unlock: a round trip for every query outside a transaction. Linli sets no session
    state, listens to nothing and takes no session locks, so there is nothing to reset;
    an open transaction is still rolled back by the pool before this runs."""


def tortoise_config(settings: Settings, *, database_url: str | None = None) -> dict[str, Any]:
    """Build the Tortoise config dict (also what `tortoise` CLI reads through TORTOISE_ORM)."""
    url = database_url or settings.database_url
    connection = expand_db_url(url)
    if connection["engine"] == "tortoise.backends.sqlite":
        # The bot may run as a second process beside the app: wait for the writer, don't fail.
        connection["credentials"].setdefault("busy_timeout", 5000)
        connection["credentials"].setdefault("synchronous", "NORMAL")
    else:
        connection["credentials"].setdefault("minsize", 1)
        connection["credentials"].setdefault("maxsize", 10)
        connection["credentials"].setdefault("reset", _release_as_is)
        if settings.db_statement_timeout_ms:
            # A hung statement (a lock never released, a runaway query) ends with an error the
            # app answers as 503 `unavailable`, instead of holding a request and a connection.
            server_settings = connection["credentials"].setdefault("server_settings", {})
            server_settings.setdefault("statement_timeout", str(settings.db_statement_timeout_ms))
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "backend.migrations",
            }
        },
        "use_tz": True,
        # Stored in UTC: SQLite compares datetimes as text, so every value needs one offset.
        "timezone": "UTC",
    }


async def init_db(settings: Settings, *, database_url: str | None = None) -> None:
    """Connect Tortoise for this process; every task (requests, the bot) shares it."""
    settings.ensure_var_dir()
    await Tortoise.init(
        config=tortoise_config(settings, database_url=database_url),
        _enable_global_fallback=True,
    )


async def close_db() -> None:
    """Close this process's connections (and release Tortoise's global context)."""
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Apply the committed migrations (the only way the schema changes outside tests)."""
    from tortoise.migrations.api import migrate as run_migrations

    settings.ensure_var_dir()
    # A migration may rightly run long (an index on a big table): no statement timeout.
    unbounded = settings.model_copy(update={"db_statement_timeout_ms": 0})
    await run_migrations(config=tortoise_config(unbounded))
    await Tortoise.close_connections()


def is_postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def ping() -> None:
    await connections.get("default").execute_query("SELECT 1")
