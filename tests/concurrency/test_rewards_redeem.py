"""Redemption races against a two-worker server on PostgreSQL, each with its control case.

Three bursts, all fired at once at `linli serve --workers 2`:
- stock: 5 left and 50 residents redeem → exactly 5 get one;
- balance: one resident with points for one reward fires 20 redemptions → exactly 1;
- idempotency: 10 retries of one request with one Idempotency-Key → one effect.

The control run starts the same server with LINLI_TEST_UNGUARDED_REDEEM=1, where a
redemption reads, checks, waits and writes back (and the key is looked up before and
recorded after the work): the same bursts must then break every one of those rules, which
shows that the bursts really race and that the guarded statements are what holds them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.db import close_db, init_db
from backend.orgs.models import Community
from backend.points import ledger
from backend.points.models import PointsBatch, PointsLedgerEntry, Redemption, Reward
from tests.concurrency.harness import Tally, fire, load_client
from tests.factories import auth_headers, make_community, make_staff, make_user
from tests.factories.points import make_reward

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize(
        "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
    ),
]

STOCK, CROWD = 5, 50
SAME_PERSON_TRIES = 20
RETRIES = 10


@dataclass
class Outcome:
    tally: Tally
    redemptions: int
    stock: int


async def resident(community: Community, points: int) -> User:
    user = await make_user(community=community)
    await ledger.award(
        user_id=user.id, amount=points, source_type="activity", source_id="start", reason="初始"
    )
    return user


async def put_up(community: Community, *, cost: int, stock: int, limit: int) -> Reward:
    staff = await make_staff(community)
    return await make_reward(
        actor=staff, community_id=community.id, title="抽纸", cost=cost, stock=stock,
        per_user_limit=limit,
    )  # fmt: skip


async def books_balance(user: User) -> bool:
    balance = (await User.get(id=user.id)).points_balance
    ledger = await PointsLedgerEntry.filter(user_id=user.id).values_list("delta", flat=True)
    return balance == sum(ledger) >= 0


async def outcome(reward: Reward, tally: Tally) -> Outcome:
    return Outcome(
        tally=tally,
        redemptions=await Redemption.filter(reward_id=reward.id).count(),
        stock=(await Reward.get(id=reward.id)).stock,
    )


def redeem_url(reward: Reward) -> str:
    return f"/api/v1/rewards/{reward.id}/redeem"


async def stock_burst(client: httpx.AsyncClient) -> Outcome:
    community = await make_community()
    reward = await put_up(community, cost=10, stock=STOCK, limit=1)
    crowd = [await resident(community, 100) for _ in range(CROWD)]

    async def redeem(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(redeem_url(reward), headers=auth_headers(crowd[i]))

    return await outcome(reward, await fire(client, CROWD, redeem))


async def balance_burst(client: httpx.AsyncClient) -> tuple[Outcome, User]:
    community = await make_community()
    reward = await put_up(community, cost=100, stock=50, limit=SAME_PERSON_TRIES)
    user = await resident(community, 150)
    headers = auth_headers(user)

    async def redeem(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(redeem_url(reward), headers=headers)

    return await outcome(reward, await fire(client, SAME_PERSON_TRIES, redeem)), user


async def retry_burst(client: httpx.AsyncClient) -> tuple[Outcome, User]:
    community = await make_community()
    reward = await put_up(community, cost=10, stock=50, limit=RETRIES)
    user = await resident(community, 1000)
    headers = auth_headers(user) | {"Idempotency-Key": "redeem-once"}

    async def redeem(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(redeem_url(reward), headers=headers)

    return await outcome(reward, await fire(client, RETRIES, redeem)), user


async def start(live_server_factory, settings, **env: str):
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(live_server_factory, workers=2, **env)
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    return server


async def test_the_guards_hold_under_bursts_on_two_workers(settings, live_server_factory):
    server = await start(live_server_factory, settings)
    try:
        async with load_client(server.base_url, connections=CROWD) as client:
            stock = await stock_burst(client)
            balance, spender = await balance_burst(client)
            retried, retrier = await retry_burst(client)

        for burst in (stock, balance, retried):
            assert 500 not in burst.tally.statuses, burst.tally.statuses
        # 5 in stock, 50 at once: exactly 5.
        assert stock.tally.statuses == {201: STOCK, 409: CROWD - STOCK}, stock.tally.statuses
        assert stock.tally.count(409, "out_of_stock") == CROWD - STOCK
        assert (stock.redemptions, stock.stock) == (STOCK, 0)
        codes = {o.body["pickup_code"] for o in stock.tally.successes()}
        assert len(codes) == STOCK

        # Points for one, 20 at once: exactly 1, and the books still balance.
        assert balance.tally.statuses == {201: 1, 409: SAME_PERSON_TRIES - 1}
        assert balance.tally.count(409, "insufficient_points") == SAME_PERSON_TRIES - 1
        assert balance.redemptions == 1
        assert (await User.get(id=spender.id)).points_balance == 50
        assert await books_balance(spender)
        batches = await PointsBatch.filter(user_id=spender.id).values_list("remaining", flat=True)
        assert sum(batches) == 50

        # One key, 10 retries at once: one redemption; the rest replay it or are told to wait.
        assert retried.redemptions == 1
        assert retried.stock == 49
        ids = {o.body["id"] for o in retried.tally.successes()}
        assert len(ids) == 1
        assert set(retried.tally.codes) <= {None, "idempotency_in_progress"}
        assert (await User.get(id=retrier.id)).points_balance == 990
        assert await books_balance(retrier)
    finally:
        await close_db()


async def test_control_read_check_write_breaks_every_rule(settings, live_server_factory):
    server = await start(live_server_factory, settings, LINLI_TEST_UNGUARDED_REDEEM="1")
    try:
        async with load_client(server.base_url, connections=CROWD) as client:
            stock = await stock_burst(client)
            balance, spender = await balance_burst(client)
            retried, _ = await retry_burst(client)

        for burst in (stock, balance, retried):
            assert 500 not in burst.tally.statuses, burst.tally.statuses
        # Oversold: more redemptions than there ever was stock.
        assert stock.redemptions > STOCK, stock.tally.statuses
        # Overspent: more than one redemption on points for one, the ledger below zero.
        assert balance.redemptions > 1, balance.tally.statuses
        assert not await books_balance(spender)
        # The retries each took effect.
        assert retried.redemptions > 1, retried.tally.statuses
    finally:
        await close_db()
