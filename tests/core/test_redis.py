"""Redis that does not answer (accepts connections, never replies) only makes things slower:
the breaker skips it after one short timeout, requests, bookings and rate limits take their
database or in-process path, and the bot keeps every message for when Redis is back."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.config import Settings, reset_settings
from backend.core.models import OutboxMessage
from backend.core.redis import KeyValueUnavailable, RedisKeyValue, close_kv, init_kv
from bot.relay import Relay
from tests.bot.test_relay import TEMPLATE, add_official_account
from tests.conftest import REDIS_URL
from tests.factories import auth_headers, make_community, make_user
from tests.factories.activities import freeze, make_activity
from tests.fakes.blackhole import BlackHole


@pytest.fixture
def black_hole():
    with BlackHole(lifetime=300) as hole:
        yield hole


# --- the breaker ---


async def test_after_one_timeout_redis_is_skipped_without_connecting(black_hole):
    kv = RedisKeyValue(black_hole.url, timeout=0.2, pause=60)
    try:
        with pytest.raises(KeyValueUnavailable):
            await kv.get("a")
        assert black_hole.accepted == 1 and kv.breaker.is_open
        for _ in range(50):
            with pytest.raises(KeyValueUnavailable):
                await kv.incr("b", ttl=5)
        # Fifty calls, no new connection: none of them waited on Redis.
        assert black_hole.accepted == 1
    finally:
        await kv.close()


async def test_after_the_pause_one_call_probes_and_the_others_skip(black_hole):
    kv = RedisKeyValue(black_hole.url, timeout=0.2, pause=0.05)
    try:
        with pytest.raises(KeyValueUnavailable):
            await kv.get("a")
        await asyncio.sleep(0.1)  # the pause is over
        results = await asyncio.gather(*(kv.get("a") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, KeyValueUnavailable) for r in results)
        assert black_hole.accepted == 2  # the one probe
    finally:
        await kv.close()


async def test_a_probe_that_succeeds_closes_the_breaker(redis_url):
    kv = RedisKeyValue(redis_url, prefix="breaker-test:", timeout=0.5, pause=0.05)
    try:
        kv.breaker.failed()
        with pytest.raises(KeyValueUnavailable):
            await kv.set("k", "v", ttl=5)
        await asyncio.sleep(0.1)
        assert await kv.set("k", "v", ttl=5)
        assert not kv.breaker.is_open
        assert await kv.get("k") == "v"
        await kv.delete("k")
    finally:
        await kv.close()


# --- the app and the bot with Redis blackholed ---


@pytest.fixture
def settings(settings: Settings, black_hole: BlackHole, monkeypatch) -> Settings:
    monkeypatch.setenv("LINLI_REDIS_URL", black_hole.url)
    monkeypatch.setenv("LINLI_RATE_LIMITS", "on")
    reset_settings()
    return Settings()


def healthy(settings: Settings, backend: str) -> Settings:
    """The same settings with Redis back (real Redis on PostgreSQL, in-process on SQLite)."""
    return settings.model_copy(update={"redis_url": REDIS_URL if backend == "postgres" else None})


async def test_me_answers_and_readyz_reports_redis_down_but_stays_ready(client, black_hole):
    user = await make_user(community=await make_community())
    answers = [
        (await client.get("/api/v1/me", headers=auth_headers(user))).status_code for _ in range(30)
    ]
    ready = await client.get("/readyz")

    assert answers == [200] * 30
    # Requests still work without Redis, so the replica stays in the load balancer.
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "redis": "down"}
    assert "linli_redis_up 0.0" in (await client.get("/metrics")).text
    # The rate limit and the readiness probe asked Redis once; then it was skipped.
    assert black_hole.accepted == 1


async def test_bookings_stay_exact_and_no_notice_fails_because_of_redis(
    client, settings, backend, fake_wechat
):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=3, waitlist_capacity=2)
    people = [await make_user(community=community) for _ in range(8)]
    for person in people:
        await add_official_account(person, settings)

    responses = await asyncio.gather(
        *(
            client.post(f"/api/v1/activities/{activity.id}/bookings", headers=auth_headers(p))
            for p in people
        )
    )

    outcomes = Counter(
        r.json()["status"] if r.status_code == 201 else r.json()["error"]["code"] for r in responses
    )
    assert outcomes == {"confirmed": 3, "waitlisted": 2, "sold_out": 3}
    assert (await Activity.get(id=activity.id)).booked == 3
    assert await Booking.filter(activity_id=activity.id, status="confirmed").count() == 3
    messages = await OutboxMessage.filter(template_key="booking").count()
    assert messages == 5

    relay = Relay(settings)
    try:
        await relay.run_once()
        waiting = await OutboxMessage.filter(template_key="booking")
        assert {(m.status, m.attempts) for m in waiting} == {("pending", 0)}
        assert fake_wechat.calls_to(TEMPLATE) == []

        # Redis is back.
        await close_kv()
        init_kv(healthy(settings, backend))
        clock.set(max(m.available_at for m in waiting) + timedelta(seconds=1))
        await relay.run_once()
    finally:
        await relay.aclose()
    delivered = await OutboxMessage.filter(template_key="booking")
    assert {(m.status, m.attempts) for m in delivered} == {("sent", 1)}
    assert not await OutboxMessage.filter(status="failed").exists()
    assert len(fake_wechat.calls_to(TEMPLATE)) == 5
