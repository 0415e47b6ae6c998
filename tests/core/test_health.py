"""Liveness and readiness as a load balancer asks them."""

from __future__ import annotations

import asyncpg
import pytest

from backend.core.config import Settings
from tests.conftest import PG_URL, _admin_dsn


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz(client, settings: Settings):
    response = await client.get("/readyz")
    assert response.status_code == 200
    # The embedded default has no Redis to report on.
    assert response.json() == {"status": "ok", "redis": "ok" if settings.redis_url else "off"}


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)
async def test_readyz_is_503_while_the_database_refuses_connections(client, settings: Settings):
    name = settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_admin_dsn(PG_URL))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        down = await client.get("/readyz")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    again = await client.get("/readyz")

    assert down.status_code == 503
    assert down.json()["error"]["code"] == "unavailable"
    assert down.json()["error"]["message"] == "数据库不可用"
    assert again.status_code == 200


async def test_unknown_path_is_enveloped(client):
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
