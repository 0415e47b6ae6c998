"""Idempotency-Key: same key + same body replays, different body is refused, nothing twice."""

import itertools
from datetime import timedelta

import httpx
from fastapi import APIRouter, Header
from pydantic import BaseModel

from backend.core.clock import clock
from backend.core.errors import Conflict
from backend.core.idempotency import idempotent
from backend.core.models import IdempotencyRecord, OutboxMessage
from backend.core.outbox import enqueue

_counter = itertools.count()


class _Order(BaseModel):
    item: str


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/probe/orders", status_code=201)
    async def create_order(order: _Order, idempotency_key: str | None = Header(None)):
        async def action() -> dict:
            if order.item == "sold-out":
                raise Conflict("已售罄", code="sold_out")
            n = next(_counter)
            await enqueue(template_key="notice", context={"n": n}, dedupe_key=f"order:{n}")
            return {"order": n, "item": order.item}

        return await idempotent(
            key=idempotency_key,
            user_id=1,
            endpoint="orders",
            payload=order,
            status_code=201,
            action=action,
        )

    return router


async def _client(settings) -> httpx.AsyncClient:
    from backend.main import create_app

    app = create_app(settings)
    app.include_router(_router())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_same_key_replays_first_response(db, settings):
    async with await _client(settings) as client:
        headers = {"Idempotency-Key": "k-1"}
        first = await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
        second = await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await OutboxMessage.all().count() == 1


async def test_same_key_different_body_is_mismatch(db, settings):
    async with await _client(settings) as client:
        headers = {"Idempotency-Key": "k-2"}
        await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
        other = await client.post("/probe/orders", json={"item": "tissue"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_mismatch"
    assert await OutboxMessage.all().count() == 1


async def test_in_progress_with_matching_body(db, settings):
    from backend.core.idempotency import _fingerprint

    digest = _fingerprint("orders", _Order(item="bag"))
    await IdempotencyRecord.create(
        scope="user:1", key="k-4", request_hash=digest, status="running", created_at=clock.now()
    )
    async with await _client(settings) as client:
        response = await client.post(
            "/probe/orders", json={"item": "bag"}, headers={"Idempotency-Key": "k-4"}
        )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"


async def test_failed_request_can_be_retried_with_same_key(db, settings):
    async with await _client(settings) as client:
        headers = {"Idempotency-Key": "k-5"}
        failed = await client.post("/probe/orders", json={"item": "sold-out"}, headers=headers)
        assert failed.status_code == 409
        assert await IdempotencyRecord.filter(key="k-5").count() == 0


async def test_keys_expire_after_ttl(db, settings):
    async with await _client(settings) as client:
        headers = {"Idempotency-Key": "k-6"}
        await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
        clock.advance(timedelta(seconds=settings.idempotency_ttl_seconds + 1))
        again = await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
    assert "idempotent-replayed" not in again.headers
    assert await OutboxMessage.all().count() == 2


async def test_bad_key_is_invalid(db, settings):
    async with await _client(settings) as client:
        response = await client.post(
            "/probe/orders", json={"item": "bag"}, headers={"Idempotency-Key": "k" * 300}
        )
    assert response.status_code == 422


async def _stuck_record(key: str, *, started_ago: timedelta) -> None:
    from backend.core.idempotency import _fingerprint

    await IdempotencyRecord.create(
        scope="user:1",
        key=key,
        request_hash=_fingerprint("orders", _Order(item="bag")),
        status="running",
        created_at=clock.now() - started_ago,
    )


async def test_a_request_that_died_mid_way_is_taken_over_after_the_lease(db, settings):
    await _stuck_record(
        "k-7", started_ago=timedelta(seconds=settings.idempotency_lease_seconds + 1)
    )
    async with await _client(settings) as client:
        headers = {"Idempotency-Key": "k-7"}
        retried = await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
        replayed = await client.post("/probe/orders", json={"item": "bag"}, headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert replayed.json() == retried.json() and replayed.headers["idempotent-replayed"] == "true"
    assert await OutboxMessage.all().count() == 1
    [record] = await IdempotencyRecord.filter(key="k-7")
    assert record.status == "done" and record.response_status == 201


async def test_a_running_request_within_its_lease_is_still_in_progress(db, settings):
    await _stuck_record(
        "k-8", started_ago=timedelta(seconds=settings.idempotency_lease_seconds - 5)
    )
    async with await _client(settings) as client:
        response = await client.post(
            "/probe/orders", json={"item": "bag"}, headers={"Idempotency-Key": "k-8"}
        )
    assert response.json()["error"]["code"] == "idempotency_in_progress"
    assert await OutboxMessage.all().count() == 0


async def test_two_retries_of_a_dead_request_take_it_over_once(db, settings):
    from backend.core.idempotency import _claim, _fingerprint

    await _stuck_record("k-9", started_ago=timedelta(minutes=5))
    digest = _fingerprint("orders", _Order(item="bag"))
    now = clock.now()
    first = await _claim("user:1", "k-9", digest, now)
    second = await _claim("user:1", "k-9", digest, now + timedelta(milliseconds=1))
    assert first is None  # this retry runs
    assert second is not None and second.status == "running"  # this one is told to wait


async def test_a_dead_request_with_another_body_is_still_a_mismatch(db, settings):
    await _stuck_record("k-10", started_ago=timedelta(minutes=5))
    async with await _client(settings) as client:
        response = await client.post(
            "/probe/orders", json={"item": "tissue"}, headers={"Idempotency-Key": "k-10"}
        )
    assert response.json()["error"]["code"] == "idempotency_mismatch"
    assert await OutboxMessage.all().count() == 0


async def test_the_late_first_run_cannot_overwrite_the_record_of_the_retry(db, settings):
    from backend.core.idempotency import _claim, _fingerprint

    clock.set(clock.now())
    digest = _fingerprint("orders", _Order(item="bag"))
    started = clock.now() - timedelta(minutes=5)
    assert await _claim("user:1", "k-11", digest, started) is None
    assert await _claim("user:1", "k-11", digest, clock.now()) is None
    # The first run comes back late: its record now belongs to the retry, so its update
    # (filtered on its own start) matches nothing.
    late = IdempotencyRecord.filter(scope="user:1", key="k-11", created_at=started)
    assert await late.update(status="done") == 0
    [record] = await IdempotencyRecord.filter(key="k-11")
    assert record.status == "running" and record.created_at == clock.now()
