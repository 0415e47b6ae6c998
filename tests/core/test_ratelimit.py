"""Per-IP limits answer 429 with the envelope (Redis-backed on the postgres stack)."""

import httpx
import pytest

from backend.core.config import reset_settings


@pytest.fixture
async def limited_client(db, settings, monkeypatch):
    from backend.main import create_app

    monkeypatch.setenv("LINLI_RATE_LIMITS", "on")
    monkeypatch.setenv("LINLI_RATE_LIMIT_IP_PER_MINUTE", "5")
    reset_settings()
    app = create_app()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
    reset_settings()


async def test_ip_limit_answers_429(limited_client):
    statuses = [(await limited_client.get("/api/v1/communities")).status_code for _ in range(7)]
    assert statuses[:5].count(429) == 0
    assert statuses[5:] == [429, 429]
    response = await limited_client.get("/api/v1/communities")
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) > 0


async def test_health_is_never_limited(limited_client):
    for _ in range(10):
        assert (await limited_client.get("/healthz")).status_code == 200


async def test_switched_off_for_load_tests(client):
    for _ in range(30):
        assert (await client.get("/api/v1/communities")).status_code != 429
