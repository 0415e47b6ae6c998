"""Points can never be overspent, however many debits arrive at once.

The control case comes first: a read-the-balance-then-write spend, run in lockstep on
real PostgreSQL connections, overspends. The same attempts with the guarded UPDATE the
ledger uses do not, and neither does the real API — in one process, and behind a
two-worker server on PostgreSQL with every request racing for the same row.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.db import close_db, init_db
from backend.points import ledger
from backend.points.models import PointsLedgerEntry
from tests.concurrency.harness import Tally, fire, in_lockstep, load_client
from tests.factories import auth_headers, make_community, make_staff, make_user

START_BALANCE = 500
DEBIT = 10
REQUESTS = 200
AFFORDABLE = START_BALANCE // DEBIT  # 50
LOCKSTEP_CONNECTIONS = 20

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_target() -> tuple[User, User]:
    """A staff member and a resident of their community holding START_BALANCE points."""
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)
    await ledger.award(
        user_id=resident.id,
        amount=START_BALANCE,
        source_type="activity",
        source_id="start",
        reason="初始积分",
    )
    return staff, resident


async def debit_all_at_once(client: httpx.AsyncClient, staff: User, resident: User) -> Tally:
    headers = auth_headers(staff)

    async def debit(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(
            "/api/v1/points/adjustments",
            json={"user_id": resident.id, "delta": -DEBIT, "reason": f"并发扣减 {i}"},
            headers=headers,
        )

    return await fire(client, REQUESTS, debit)


async def assert_never_overspent(tally: Tally, resident: User) -> None:
    assert tally.statuses == {201: AFFORDABLE, 409: REQUESTS - AFFORDABLE}, tally.statuses
    assert tally.count(409, "insufficient_points") == REQUESTS - AFFORDABLE
    # Each success saw a distinct, exact balance: 490, 480, ... 0.
    after = sorted(o.body["balance_after"] for o in tally.successes())
    assert after == list(range(0, START_BALANCE, DEBIT))
    user = await User.get(id=resident.id)
    ledger = await PointsLedgerEntry.filter(user_id=resident.id).values_list("delta", flat=True)
    assert user.points_balance == 0
    assert sum(ledger) == user.points_balance
    assert len(ledger) == 1 + AFFORDABLE


# --- the control case: a check-then-write spend really races ---


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def naive_spend(conn: asyncpg.Connection, user_id: int, barrier: asyncio.Barrier) -> bool:
    async with conn.transaction():
        balance = await conn.fetchval('SELECT points_balance FROM "user" WHERE id = $1', user_id)
        await barrier.wait()
        if balance < DEBIT:
            return False
        await conn.execute(
            'UPDATE "user" SET points_balance = points_balance - $2 WHERE id = $1', user_id, DEBIT
        )
        return True


async def guarded_spend(conn: asyncpg.Connection, user_id: int, barrier: asyncio.Barrier) -> bool:
    async with conn.transaction():
        await conn.fetchval('SELECT points_balance FROM "user" WHERE id = $1', user_id)
        await barrier.wait()
        status = await conn.execute(
            'UPDATE "user" SET points_balance = points_balance - $2 '
            "WHERE id = $1 AND points_balance >= $2",
            user_id,
            DEBIT,
        )
        return status == "UPDATE 1"


@postgres_only
@pytest.mark.parametrize(
    ("spend", "overspends"), [(naive_spend, True), (guarded_spend, False)], ids=["naive", "guarded"]
)
async def test_control_check_then_write_overspends_and_the_guard_does_not(
    db, settings, spend, overspends
):
    user = await make_user(points_balance=START_BALANCE)
    dsn = _dsn(settings.database_url)
    conns = [await asyncpg.connect(dsn) for _ in range(LOCKSTEP_CONNECTIONS)]
    try:
        succeeded = await in_lockstep(
            conns,
            REQUESTS // LOCKSTEP_CONNECTIONS,
            lambda conn, barrier: spend(conn, user.id, barrier),
        )
    finally:
        await asyncio.gather(*(c.close() for c in conns))

    balance = (await User.get(id=user.id)).points_balance
    if overspends:
        assert succeeded > AFFORDABLE
        assert balance < 0
    else:
        assert succeeded == AFFORDABLE
        assert balance == 0


# --- the real thing ---


async def test_concurrent_debits_in_one_process_never_overspend(client):
    staff, resident = await make_target()
    tally = await debit_all_at_once(client, staff, resident)
    await assert_never_overspent(tally, resident)


@postgres_only
@pytest.mark.slow
async def test_concurrent_debits_across_two_workers_never_overspend(settings, live_server_factory):
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(live_server_factory, workers=2)
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    try:
        staff, resident = await make_target()
        async with load_client(server.base_url, connections=REQUESTS) as client:
            tally = await debit_all_at_once(client, staff, resident)
        await assert_never_overspent(tally, resident)
    finally:
        await close_db()
