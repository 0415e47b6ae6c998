"""First claim wins: of 200 people claiming one wish at the same moment, exactly one gets it.

The control case: with the test-only switch LINLI_TEST_UNGUARDED_CLAIM=1 (honoured only
when LINLI_ENV=dev) the claim's UPDATE drops its `status='open'` guard and trusts the
status the request read first (read-check-write), and the same burst against two server
processes on PostgreSQL lets more than one claim "succeed" — the race is real. With the guarded
statement, exactly one succeeds and the other 199 get 409 already_claimed: in one
process (SQLite and PostgreSQL) and across two workers on PostgreSQL.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.db import close_db, init_db
from backend.core.models import OutboxMessage
from backend.wishes import service
from backend.wishes.models import Wish, WishClaimer, WishEvent
from tests.concurrency.harness import Tally, fire, load_client
from tests.conftest import PROD_ENV
from tests.factories import auth_headers, make_community, make_staff, make_user
from tests.factories.wishes import submit_wish

CLAIMERS = 200

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_hot_wish() -> tuple[int, list[User]]:
    """An approved wish and CLAIMERS residents ready to claim it."""
    community = await make_community()
    poster = await make_user(nickname="张阿姨", community=community, phone="13912345678")
    staff = await make_staff(community)
    wish = await submit_wish(
        user=poster,
        community_id=community.id,
        title="想摸一摸南极的冰",
        description="孩子想亲手摸一摸南极的冰块。",
        category="儿童心愿",
    )
    await service.review_wish(actor=staff, wish_id=wish.id, approve=True)
    claimers = [
        await User.create(nickname=f"邻居{i}", community_id=community.id) for i in range(CLAIMERS)
    ]
    return wish.id, claimers


async def claim_all_at_once(client: httpx.AsyncClient, wish_id: int, claimers: list[User]) -> Tally:
    headers = [auth_headers(user) for user in claimers]

    async def claim(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/wishes/{wish_id}/claim", headers=headers[i])

    return await fire(client, len(claimers), claim)


async def assert_exactly_one_claim(tally: Tally, wish_id: int) -> None:
    assert tally.statuses == {200: 1, 409: CLAIMERS - 1}, tally.statuses
    assert tally.count(409, "already_claimed") == CLAIMERS - 1
    winner = tally.successes()[0].body
    wish = await Wish.get(id=wish_id)
    assert wish.status == "claimed"
    assert winner["status"] == "claimed" and winner["claimed_by"] == "邻**"
    assert await WishEvent.filter(wish_id=wish_id, action="claimed").count() == 1
    notices = await OutboxMessage.filter(template_key="wish").values_list("context", flat=True)
    assert [n["status"] for n in notices].count("claimed") == 1
    # Every refused claim gave back the place it held against the per-person limit.
    held = await WishClaimer.filter(open_claims__gt=0).values_list("user_id", flat=True)
    assert held == [wish.claimer_id]


async def test_simultaneous_claims_in_one_process_exactly_one_wins(client: httpx.AsyncClient):
    wish_id, claimers = await make_hot_wish()
    tally = await claim_all_at_once(client, wish_id, claimers)
    await assert_exactly_one_claim(tally, wish_id)


async def _burst_against_two_workers(settings, live_server_factory, **env: str):
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(live_server_factory, workers=2, **env)
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    wish_id, claimers = await make_hot_wish()
    async with load_client(server.base_url, connections=CLAIMERS) as client:
        tally = await claim_all_at_once(client, wish_id, claimers)
    return wish_id, tally


@postgres_only
@pytest.mark.slow
async def test_control_unguarded_claims_across_two_workers_let_several_win(
    settings, live_server_factory
):
    try:
        wish_id, tally = await _burst_against_two_workers(
            settings, live_server_factory, LINLI_TEST_UNGUARDED_CLAIM="1"
        )
        # Read-check-write: several requests saw "open" before any of them wrote.
        assert len(tally.successes()) > 1, tally.statuses
        assert await WishEvent.filter(wish_id=wish_id, action="claimed").count() > 1
    finally:
        await close_db()


@postgres_only
@pytest.mark.slow
async def test_simultaneous_claims_across_two_workers_exactly_one_wins(
    settings, live_server_factory
):
    try:
        wish_id, tally = await _burst_against_two_workers(settings, live_server_factory)
        await assert_exactly_one_claim(tally, wish_id)
    finally:
        await close_db()


def test_the_unguarded_switch_is_refused_in_production(monkeypatch):
    # The settings refuse the switch in prod outright (backend.core.config): stronger than
    # ignoring it there.
    from pydantic import ValidationError

    from backend.core.config import Settings

    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LINLI_TEST_UNGUARDED_CLAIM", "1")
    with pytest.raises(ValidationError, match="tests only"):
        Settings()
