"""Every failure answers with the envelope; an unexpected exception is a 500 with a request id."""

import logging

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.core.errors import Conflict


class _Payload(BaseModel):
    name: str = Field(min_length=2, max_length=5)
    count: int = Field(ge=1)


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/probe")
    async def probe(payload: _Payload) -> dict:
        return payload.model_dump()

    @router.post("/probe/conflict")
    async def conflict() -> dict:
        raise Conflict("名额已满", code="sold_out")

    @router.get("/probe/boom")
    async def boom() -> dict:
        raise RuntimeError("database exploded at /secret/path")

    return router


async def _client_with_probe(settings):
    from backend.main import create_app

    app = create_app(settings)
    app.include_router(_probe_router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_malformed_json_is_invalid(db, settings):
    async with await _client_with_probe(settings) as client:
        response = await client.post(
            "/probe", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "body" in error["fields"]


async def test_validation_errors_name_the_fields(db, settings):
    async with await _client_with_probe(settings) as client:
        response = await client.post("/probe", json={"name": "x", "count": 0})
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"name", "count"}
    assert all(isinstance(message, str) and message for message in fields.values())


async def test_domain_error_keeps_its_code(db, settings):
    async with await _client_with_probe(settings) as client:
        response = await client.post("/probe/conflict")
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "sold_out", "message": "名额已满"}}


async def test_unexpected_error_is_internal_without_traceback(db, settings, caplog):
    async with await _client_with_probe(settings) as client:
        with caplog.at_level(logging.ERROR, logger="linli"):
            logging.getLogger("linli").propagate = True
            try:
                response = await client.get("/probe/boom", headers={"X-Request-Id": "req-123"})
            finally:
                logging.getLogger("linli").propagate = False
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal"
    assert error["request_id"] == "req-123"
    assert "exploded" not in response.text and "Traceback" not in response.text
    assert any("unhandled" in r.getMessage() for r in caplog.records)


async def test_wrong_method_is_enveloped(client):
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
