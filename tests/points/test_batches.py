"""Earned points sit in batches that expire, debits take the oldest first, expiry is a row."""

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.models import OutboxMessage
from backend.points import ledger
from backend.points.exceptions import InsufficientPoints
from backend.points.models import PointsBatch, PointsLedgerEntry
from tests.factories import SHANGHAI, local, make_user
from tests.factories.points import award, spend


async def remaining(user_id: int) -> dict[datetime, int]:
    rows = await PointsBatch.filter(user_id=user_id).order_by("expires_at")
    return {b.expires_at.astimezone(SHANGHAI).replace(tzinfo=None): b.remaining for b in rows}


async def assert_consistent(user_id: int) -> None:
    user = await User.get(id=user_id)
    deltas = await PointsLedgerEntry.filter(user_id=user_id).values_list("delta", flat=True)
    batches = await PointsBatch.filter(user_id=user_id).values_list("remaining", flat=True)
    assert user.points_balance == sum(deltas) == sum(batches) >= 0


def test_points_expire_at_the_end_of_the_next_calendar_year():
    assert ledger.expiry_for(local(2025, 3, 15, 10)) == local(2027, 1, 1).astimezone(UTC)
    # Late on New Year's Eve in Shanghai is still the old year, though UTC says otherwise.
    assert ledger.expiry_for(local(2025, 12, 31, 23, 30)) == local(2027, 1, 1).astimezone(UTC)
    assert ledger.expiry_for(local(2026, 1, 1, 0, 30)) == local(2028, 1, 1).astimezone(UTC)
    assert ledger.last_valid_day(local(2027, 1, 1)).date() == local(2026, 12, 31).date()


def test_the_expiry_horizon_is_configurable(monkeypatch):
    from backend.core.config import reset_settings

    monkeypatch.setenv("LINLI_POINTS_EXPIRY_YEARS", "0")
    reset_settings()
    try:
        assert ledger.expiry_for(local(2025, 3, 15)) == local(2026, 1, 1).astimezone(UTC)
    finally:
        monkeypatch.delenv("LINLI_POINTS_EXPIRY_YEARS")
        reset_settings()


async def test_awards_of_one_year_share_a_batch(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2025, 11, 1, 9))
    await award(user.id, 5, "a2")
    clock.set(local(2026, 2, 1, 9))
    await award(user.id, 7, "a3")

    assert await remaining(user.id) == {datetime(2027, 1, 1): 15, datetime(2028, 1, 1): 7}
    await assert_consistent(user.id)


async def test_a_debit_takes_the_batch_that_expires_first(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2026, 3, 1, 9))
    await award(user.id, 10, "a2")

    await spend(user.id, 12, "r1")

    assert await remaining(user.id) == {datetime(2027, 1, 1): 0, datetime(2028, 1, 1): 8}
    entry = await PointsLedgerEntry.get(source_id="r1")
    uses = sorted((u.amount for u in await entry.batch_uses.all()), reverse=True)
    assert uses == [10, 2]
    await assert_consistent(user.id)


async def test_the_expiry_job_writes_a_ledger_row_per_batch(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    await spend(user.id, 4, "r1")
    clock.set(local(2026, 6, 1, 9))
    await award(user.id, 20, "a2")

    clock.set(local(2026, 12, 31, 23, 59))
    assert await ledger.expire_due_batches() == 0
    clock.set(local(2027, 1, 1, 0, 0))
    assert await ledger.expire_due_batches() == 1
    assert await ledger.expire_due_batches() == 0  # a second run finds nothing left

    expiry = await PointsLedgerEntry.get(user_id=user.id, source_type="expiry")
    assert (expiry.delta, expiry.balance_after) == (-6, 20)
    assert "2026年12月31日" in expiry.reason
    assert await remaining(user.id) == {datetime(2027, 1, 1): 0, datetime(2028, 1, 1): 20}
    await assert_consistent(user.id)


async def test_two_expiry_jobs_at_once_expire_once(db):
    import asyncio

    users = [await make_user() for _ in range(3)]
    clock.set(local(2025, 3, 1, 9))
    for user in users:
        await award(user.id, 10, "a1")
    clock.set(local(2027, 1, 2))

    results = await asyncio.gather(ledger.expire_due_batches(), ledger.expire_due_batches())

    assert sum(results) == 3
    assert await PointsLedgerEntry.filter(source_type="expiry").count() == 3
    for user in users:
        await assert_consistent(user.id)
        assert (await User.get(id=user.id)).points_balance == 0


async def test_expired_points_cannot_be_spent_even_before_the_job_runs(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2026, 3, 1, 9))
    await award(user.id, 5, "a2")
    clock.set(local(2027, 1, 1, 8))

    with pytest.raises(InsufficientPoints):
        await spend(user.id, 6, "r1")
    # The refused spend rolled back with everything it did, the expiry row included.
    assert (await User.get(id=user.id)).points_balance == 15

    await spend(user.id, 5, "r2")

    assert (await User.get(id=user.id)).points_balance == 0
    assert await PointsLedgerEntry.filter(user_id=user.id, source_type="expiry").count() == 1
    await assert_consistent(user.id)


async def test_a_refund_goes_back_into_the_batches_it_came_from(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2026, 3, 1, 9))
    await award(user.id, 10, "a2")
    spent = await spend(user.id, 15, "r1")

    async with in_transaction():
        refund = await ledger.refund_in_tx(spent=spent, source_type="reward_refund", reason="退还")
        again = await ledger.refund_in_tx(spent=spent, source_type="reward_refund", reason="退还")

    assert refund is not None and refund.delta == 15
    assert again is None
    assert await remaining(user.id) == {datetime(2027, 1, 1): 10, datetime(2028, 1, 1): 10}
    await assert_consistent(user.id)


async def test_points_refunded_into_an_expired_batch_expire_again(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    spent = await spend(user.id, 10, "r1")
    clock.set(local(2027, 2, 1))

    async with in_transaction():
        await ledger.refund_in_tx(spent=spent, source_type="reward_refund", reason="退还")
    assert await ledger.expire_due_batches() == 1

    assert (await User.get(id=user.id)).points_balance == 0
    await assert_consistent(user.id)


async def test_the_statement_says_what_expires_when(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2026, 3, 1, 9))
    await award(user.id, 7, "a2")
    await spend(user.id, 3, "r1")

    expiring = await ledger.list_expiring(user_id=user.id)

    assert [(e.amount, e.expires_at) for e in expiring] == [
        (7, local(2027, 1, 1).astimezone(UTC)),
        (7, local(2028, 1, 1).astimezone(UTC)),
    ]


async def test_points_expiring_by_next_month_are_announced_once(db):
    user, later = await make_user(), await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.set(local(2026, 3, 1, 9))
    await award(later.id, 10, "a1")

    clock.set(local(2026, 10, 31, 23))
    assert await ledger.notify_expiring_points() == 0
    clock.set(local(2026, 11, 1, 0, 5))
    assert await ledger.notify_expiring_points() == 1
    assert await ledger.notify_expiring_points() == 0

    message = await OutboxMessage.get(user_id=user.id)
    assert message.template_key == "notice"
    assert message.context["title"] == "积分即将过期"
    assert "10 积分将于 12月31日后过期" in message.context["summary"]
    assert not await OutboxMessage.exists(user_id=later.id)


async def test_balance_set_outside_the_ledger_still_spends(db):
    # Users made with a balance (tests, old data) have no batches: debits still work.
    user = await make_user(points_balance=50)
    await spend(user.id, 20, "r1")
    assert (await User.get(id=user.id)).points_balance == 30


async def test_expiry_keeps_a_callers_transaction_usable(db):
    user = await make_user()
    clock.set(local(2025, 3, 1, 9))
    await award(user.id, 10, "a1")
    clock.advance(timedelta(days=800))
    async with in_transaction():
        await ledger.award_in_tx(
            user_id=user.id, amount=3, source_type="activity", source_id="a2", reason="x"
        )
        await ledger.spend_in_tx(
            user_id=user.id, amount=3, source_type="reward", source_id="r1", reason="x"
        )
    assert (await User.get(id=user.id)).points_balance == 0
    await assert_consistent(user.id)
