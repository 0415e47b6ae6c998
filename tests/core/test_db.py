"""PostgreSQL cancels a statement that runs too long, and the request answers 503 `unavailable`
in Chinese with nothing half-written, instead of holding the request (or failing with a 500)."""

from __future__ import annotations

import httpx
import pytest
from asyncpg.exceptions import QueryCanceledError
from fastapi import APIRouter
from tortoise import connections
from tortoise.transactions import in_transaction

from backend.core.config import Settings, reset_settings
from backend.core.db import tortoise_config
from backend.core.models import UsageCounter
from backend.core.quota import take

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)
TIMEOUT_MS = 200


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LINLI_DB_STATEMENT_TIMEOUT_MS", str(TIMEOUT_MS))
    reset_settings()
    return Settings()


def test_postgres_connections_carry_the_statement_timeout():
    config = tortoise_config(Settings(_env_file=None), database_url="postgres://u:p@db:5432/linli")
    credentials = config["connections"]["default"]["credentials"]
    assert credentials["server_settings"] == {"statement_timeout": "15000"}
    off = Settings(_env_file=None, db_statement_timeout_ms=0)
    config = tortoise_config(off, database_url="postgres://u:p@db:5432/linli")
    assert "server_settings" not in config["connections"]["default"]["credentials"]


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/probe/slow")
    async def slow() -> dict:
        async with in_transaction():
            await take("probe", bucket="slow", limit=5)
            await connections.get("default").execute_query("SELECT pg_sleep(2)")
        return {"ok": True}

    return router


@postgres_only
async def test_a_statement_past_the_timeout_is_cancelled(db, settings):
    conn = connections.get("default")
    assert (await conn.execute_query_dict("SHOW statement_timeout"))[0] == {
        "statement_timeout": f"{TIMEOUT_MS}ms"
    }
    with pytest.raises(QueryCanceledError):
        await conn.execute_query("SELECT pg_sleep(2)")
    # The connection is still good for the next statement.
    assert (await conn.execute_query_dict("SELECT 1 AS one"))[0]["one"] == 1


@postgres_only
async def test_a_request_whose_statement_times_out_answers_503_and_writes_nothing(db, settings):
    from backend.main import create_app

    app = create_app(settings)
    app.include_router(_router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/probe/slow")
        ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.json()["error"]["message"] == "系统繁忙，请稍后再试"
    assert response.headers["retry-after"] == "5"
    assert await UsageCounter.filter(key="probe").count() == 0
    assert ready.status_code == 200


async def test_every_route_that_documents_its_errors_documents_503(client):
    spec = (await client.get("/openapi.json")).json()
    operations = [
        (path, method, operation["responses"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1")
        and any(code.startswith("4") for code in operation["responses"])
    ]
    assert len(operations) > 50
    missing = [f"{method} {path}" for path, method, codes in operations if "503" not in codes]
    assert not missing
    assert operations[0][2]["503"]["description"] == "错误：unavailable"
