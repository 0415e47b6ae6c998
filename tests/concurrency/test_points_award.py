"""The same event pays once even when it is reported many times at the same moment."""

import asyncio

from backend.accounts.models import User
from backend.points import ledger
from backend.points.models import PointsLedgerEntry
from tests.factories import make_user

REPEATS = 30


async def test_simultaneous_awards_for_one_event_pay_once(db):
    user = await make_user()

    results = await asyncio.gather(
        *(
            ledger.award(
                user_id=user.id,
                amount=10,
                source_type="activity",
                source_id="attended-42",
                reason="参加活动",
            )
            for _ in range(REPEATS)
        )
    )

    assert sum(r is not None for r in results) == 1
    assert (await User.get(id=user.id)).points_balance == 10
    assert await PointsLedgerEntry.filter(user_id=user.id).count() == 1


async def test_simultaneous_awards_for_different_events_all_pay(db):
    user = await make_user()

    await asyncio.gather(
        *(
            ledger.award(
                user_id=user.id, amount=1, source_type="activity", source_id=f"a{i}", reason="x"
            )
            for i in range(REPEATS)
        )
    )

    entries = await PointsLedgerEntry.filter(user_id=user.id).order_by("id")
    assert (await User.get(id=user.id)).points_balance == REPEATS
    assert sorted(e.balance_after for e in entries) == list(range(1, REPEATS + 1))
