"""Points factories: rewards, rule versions and staff adjustments, made through the points
services from the same `*In` models the API and the H5 forms take.

The fields are given as keywords and built like a form (`h5.forms.build`): a field the
model refuses is `Invalid` naming it, just as one the service refuses, so a test of a bad
value reads the same whichever of the two says no.
"""

from __future__ import annotations

from typing import Any

from backend.accounts.models import User
from backend.points import adjustments, ledger, rewards, rules
from backend.points.models import EarningRule, PointsLedgerEntry, Reward
from backend.points.schemas import AdjustmentIn, RewardIn, RewardPatch, RuleIn
from h5.forms import build


async def give_points(
    user: User, amount: int, *, source_id: str = "start", reason: str = "参加活动"
) -> PointsLedgerEntry | None:
    """`amount` points for `user`, as for taking part in activity `source_id`."""
    return await ledger.award(
        user_id=user.id, amount=amount, source_type="activity", source_id=source_id, reason=reason
    )


async def make_reward(*, actor: User, picture: bytes | None = None, **fields: Any) -> Reward:
    """A reward put up by `actor` (staff of `community_id`), from RewardIn's fields."""
    return await rewards.create_reward(actor=actor, data=build(RewardIn, fields), picture=picture)


async def edit_reward(*, actor: User, reward_id: int, changes: dict[str, Any]) -> Reward:
    """The reward with `changes` (RewardPatch's fields) made by `actor`."""
    return await rewards.update_reward(
        actor=actor, reward_id=reward_id, data=build(RewardPatch, changes)
    )


async def make_rule(*, actor: User, **fields: Any) -> EarningRule:
    """A rule version added by the street admin `actor`, from RuleIn's fields."""
    return await rules.create_rule(actor=actor, data=build(RuleIn, fields))


async def adjust(*, actor: User, **fields: Any) -> PointsLedgerEntry:
    """A staff adjustment by `actor` (AdjustmentIn's user_id, delta and reason)."""
    return await adjustments.adjust_points(actor=actor, data=build(AdjustmentIn, fields))


async def award(user_id: int, amount: int, source_id: str) -> PointsLedgerEntry | None:
    """Points for taking part in activity `source_id`."""
    return await ledger.award(
        user_id=user_id,
        amount=amount,
        source_type="activity",
        source_id=source_id,
        reason="参加活动",
    )


async def spend(user_id: int, amount: int, source_id: str) -> PointsLedgerEntry | None:
    """Points spent on reward `source_id`."""
    return await ledger.spend(
        user_id=user_id, amount=amount, source_type="reward", source_id=source_id, reason="兑换礼品"
    )
