"""TEST ONLY: a read-check-write redemption, for the control cases of the redeem race tests.

With LINLI_TEST_UNGUARDED_REDEEM=1 (honoured only when LINLI_ENV=dev, refused in prod)
the redeem endpoint hands its request here (its one seam asks
`backend.core.unguarded.enabled("redeem")`): a redemption reads the per-user count, the
balance and the stock, checks them, waits, and then writes the values it computed — the
race the guarded statements of backend.points.rewards exist to prevent — and the
Idempotency-Key is looked up before the work and recorded after it. The control tests run
their bursts against this and assert that the rules break, which shows that the bursts
really race.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.idempotency import Once
from backend.core.models import IdempotencyRecord
from backend.points import ledger, rewards
from backend.points.exceptions import InsufficientPoints, LimitReached, OutOfStock
from backend.points.models import Redemption, Reward, RewardHolding
from backend.points.schemas import RedemptionOut

# Long enough that every request of a burst has read before the first one writes.
RACE_WINDOW_SECONDS = 0.3


async def redeem_request(*, once: Once, user: User, reward_id: int) -> JSONResponse:
    """The redeem endpoint without its guards: the key and the redemption both race."""

    async def redeem() -> RedemptionOut:
        now = clock.now()
        reward = await rewards.redeemable(reward_id=reward_id, now=now)
        redemption = await _redeem(reward=reward, user_id=user.id, now=now)
        redemption.reward = reward
        return RedemptionOut.of(redemption)

    return await _idempotent(
        key=once.key, user_id=user.id, endpoint=once.endpoint, status_code=201, action=redeem
    )


async def _redeem(*, reward: Reward, user_id: int, now: datetime) -> Redemption:
    """Redeem by reading, checking, waiting and writing back what was computed."""
    # Outside the transaction: an insert racing on the same key would queue the burst
    # behind the first request's commit and hide the race.
    await RewardHolding.bulk_create(
        [RewardHolding(reward_id=reward.id, user_id=user_id, count=0)], ignore_conflicts=True
    )
    async with in_transaction():
        held = await RewardHolding.get(reward_id=reward.id, user_id=user_id)
        balance = await User.get(id=user_id).values_list("points_balance", flat=True)
        stock = await Reward.get(id=reward.id).values_list("stock", flat=True)
        if held.count >= reward.per_user_limit:
            raise LimitReached()
        if balance < reward.cost:
            raise InsufficientPoints()
        if stock < 1:
            raise OutOfStock()
        await asyncio.sleep(RACE_WINDOW_SECONDS)
        await RewardHolding.filter(id=held.id).update(count=held.count + 1)
        await User.filter(id=user_id).update(points_balance=balance - reward.cost)
        await Reward.filter(id=reward.id).update(stock=stock - 1)
        redemption = await rewards.new_redemption(reward, user_id, now)
        await ledger.append_entry(
            user_id=user_id,
            delta=-reward.cost,
            source_type=ledger.SOURCE_REWARD,
            source_id=str(redemption.id),
            reason=rewards.spend_reason(reward),
        )
    return redemption


async def _idempotent(
    *,
    key: str | None,
    user_id: int,
    endpoint: str,
    status_code: int,
    action: Callable[[], Awaitable[Any]],
) -> JSONResponse:
    """core.idempotency.idempotent, but the key is looked up before and recorded after."""
    scope = f"user:{user_id}"
    if key is not None:
        seen = await IdempotencyRecord.get_or_none(scope=scope, key=key, status="done")
        if seen is not None:
            return JSONResponse(
                status_code=seen.response_status or status_code,
                content=json.loads(seen.response_body or "null"),
                headers={"Idempotent-Replayed": "true"},
            )
        await asyncio.sleep(RACE_WINDOW_SECONDS)
    result = jsonable_encoder(await action())
    if key is not None:
        await IdempotencyRecord.bulk_create(
            [
                IdempotencyRecord(
                    scope=scope,
                    key=key,
                    request_hash=endpoint,
                    status="done",
                    response_status=status_code,
                    response_body=json.dumps(result, ensure_ascii=False),
                    created_at=clock.now(),
                )
            ],
            ignore_conflicts=True,
        )
    return JSONResponse(status_code=status_code, content=result)
