"""Rewards and redemptions in the service: redeem, verify (核销), cancel, expire, remind."""

import asyncio
from datetime import timedelta

import pytest

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.points import ledger, rewards
from backend.points.exceptions import InsufficientPoints, LimitReached, NotOnSale, OutOfStock
from backend.points.models import PointsBatch, PointsLedgerEntry, Redemption, Reward, RewardHolding
from tests.factories import make_community, make_staff, make_user
from tests.factories.points import edit_reward, make_reward


@pytest.fixture
async def shop(db):
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)
    await ledger.award(
        user_id=resident.id, amount=100, source_type="activity", source_id="a1", reason="参加活动"
    )
    bag = await make_reward(
        actor=staff,
        community_id=community.id,
        title="环保购物袋",
        cost=30,
        stock=2,
        per_user_limit=2,
        pickup_place="居委会一楼",
        pickup_days=3,
    )
    return {"community": community, "staff": staff, "resident": resident, "bag": bag}


async def balance(user: User) -> int:
    return (await User.get(id=user.id)).points_balance


async def stock(reward: Reward) -> int:
    return (await Reward.get(id=reward.id)).stock


async def assert_books_balance(user: User) -> None:
    deltas = await PointsLedgerEntry.filter(user_id=user.id).values_list("delta", flat=True)
    batches = await PointsBatch.filter(user_id=user.id).values_list("remaining", flat=True)
    assert await balance(user) == sum(deltas) == sum(batches) >= 0


async def test_redeeming_takes_points_stock_and_allowance_together(shop):
    resident, bag = shop["resident"], shop["bag"]

    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)

    assert redemption.status == "pending_pickup"
    assert len(redemption.pickup_code) == 8 and redemption.pickup_code.isdigit()
    assert redemption.cost == 30
    assert redemption.expires_at == redemption.created_at + timedelta(days=3)
    assert await balance(resident) == 70
    assert await stock(bag) == 1
    assert (await RewardHolding.get(reward_id=bag.id, user_id=resident.id)).count == 1
    spent = await PointsLedgerEntry.get(user_id=resident.id, source_type="reward")
    assert (spent.delta, spent.source_id, spent.reason) == (
        -30,
        str(redemption.id),
        "兑换「环保购物袋」",
    )
    message = await OutboxMessage.get(user_id=resident.id, template_key="reward")
    assert message.context["pickup_code"] == redemption.pickup_code
    assert message.context["pickup_place"] == "居委会一楼"
    await assert_books_balance(resident)


async def test_refusals_change_nothing(shop):
    staff, resident, bag, community = (
        shop["staff"],
        shop["resident"],
        shop["bag"],
        shop["community"],
    )
    poor = await make_user(community=community)
    with pytest.raises(InsufficientPoints):
        await rewards.redeem_reward(user=poor, reward_id=bag.id)
    assert await stock(bag) == 2
    assert await Redemption.all().count() == 0
    assert not await RewardHolding.filter(user_id=poor.id, count__gt=0).exists()

    await rewards.redeem_reward(user=resident, reward_id=bag.id)
    await rewards.redeem_reward(user=resident, reward_id=bag.id)
    with pytest.raises(OutOfStock):
        await rewards.redeem_reward(user=resident, reward_id=bag.id)

    await rewards.change_stock(actor=staff, reward_id=bag.id, delta=5)
    with pytest.raises(LimitReached):
        await rewards.redeem_reward(user=resident, reward_id=bag.id)
    assert await balance(resident) == 40
    assert await stock(bag) == 5


async def test_a_reward_is_redeemable_only_in_its_sale_window(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    now = clock.now()
    await edit_reward(
        actor=staff, reward_id=bag.id, changes={"on_sale_from": now + timedelta(days=1)}
    )
    with pytest.raises(NotOnSale):
        await rewards.redeem_reward(user=resident, reward_id=bag.id)
    clock.set(now + timedelta(days=1))
    await rewards.redeem_reward(user=resident, reward_id=bag.id)
    await edit_reward(actor=staff, reward_id=bag.id, changes={"active": False})
    with pytest.raises(NotOnSale):
        await rewards.redeem_reward(user=resident, reward_id=bag.id)


async def test_staff_verify_a_code_once(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    typed = f"{redemption.pickup_code[:4]} {redemption.pickup_code[4:]}"

    done = await rewards.verify_redemption(actor=staff, pickup_code=typed)
    with pytest.raises(Conflict) as again:
        await rewards.verify_redemption(actor=staff, pickup_code=redemption.pickup_code)

    assert (done.status, done.fulfilled_by_id) == ("fulfilled", staff.id)
    assert done.reward.title == "环保购物袋"
    assert again.value.code == "already_fulfilled"


async def test_simultaneous_verifications_fulfil_once(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)

    results = await asyncio.gather(
        *(
            rewards.verify_redemption(actor=staff, pickup_code=redemption.pickup_code)
            for _ in range(5)
        ),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(r.code == "already_fulfilled" for r in results if isinstance(r, Conflict))


async def test_only_staff_of_the_rewards_community_verify(shop):
    resident, bag = shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    outsider = await make_staff(await make_community())

    with pytest.raises(Forbidden):
        await rewards.verify_redemption(actor=outsider, pickup_code=redemption.pickup_code)
    with pytest.raises(Forbidden):
        await rewards.verify_redemption(actor=resident, pickup_code=redemption.pickup_code)
    with pytest.raises(NotFound):
        await rewards.verify_redemption(actor=shop["staff"], pickup_code="00000000x")


async def test_cancel_returns_points_stock_and_allowance(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)

    cancelled = await rewards.cancel_redemption(
        actor=staff, redemption_id=redemption.id, reason="礼品破损"
    )

    assert (cancelled.status, cancelled.closed_by_id, cancelled.close_reason) == (
        "cancelled",
        staff.id,
        "礼品破损",
    )
    assert await balance(resident) == 100
    assert await stock(bag) == 2
    assert (await RewardHolding.get(reward_id=bag.id, user_id=resident.id)).count == 0
    refund = await PointsLedgerEntry.get(user_id=resident.id, source_type="reward_refund")
    assert (refund.delta, refund.actor_id) == (30, staff.id)
    assert await OutboxMessage.exists(dedupe_key=f"redemption-closed:{redemption.id}")
    await assert_books_balance(resident)

    with pytest.raises(Conflict) as again:
        await rewards.cancel_redemption(actor=staff, redemption_id=redemption.id, reason="重复")
    assert again.value.code == "redemption_cancelled"
    with pytest.raises(Conflict) as verify:
        await rewards.verify_redemption(actor=staff, pickup_code=redemption.pickup_code)
    assert verify.value.code == "redemption_cancelled"


async def test_a_fulfilled_redemption_cannot_be_cancelled(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    await rewards.verify_redemption(actor=staff, pickup_code=redemption.pickup_code)
    with pytest.raises(Conflict) as refused:
        await rewards.cancel_redemption(actor=staff, redemption_id=redemption.id, reason="想取消")
    assert refused.value.code == "already_fulfilled"
    assert await balance(resident) == 70


async def test_unclaimed_redemptions_expire_and_give_everything_back(shop):
    staff, resident, bag = shop["staff"], shop["resident"], shop["bag"]
    kept = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    lapsed = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    await rewards.verify_redemption(actor=staff, pickup_code=kept.pickup_code)

    clock.advance(timedelta(days=3, seconds=-1))
    assert await rewards.expire_unclaimed_redemptions() == 0
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Conflict) as too_late:
        await rewards.verify_redemption(actor=staff, pickup_code=lapsed.pickup_code)
    assert too_late.value.code == "redemption_expired"
    results = await asyncio.gather(
        rewards.expire_unclaimed_redemptions(), rewards.expire_unclaimed_redemptions()
    )

    assert sum(results) == 1
    assert (await Redemption.get(id=lapsed.id)).status == "expired"
    assert (await Redemption.get(id=kept.id)).status == "fulfilled"
    assert await balance(resident) == 70
    assert await stock(bag) == 1
    assert (await RewardHolding.get(reward_id=bag.id, user_id=resident.id)).count == 1
    await assert_books_balance(resident)


async def test_holders_are_reminded_once_before_the_deadline(shop):
    resident, bag = shop["resident"], shop["bag"]
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)

    assert await rewards.remind_pickup_deadlines() == 0
    clock.advance(timedelta(days=2, minutes=1))
    assert await rewards.remind_pickup_deadlines() == 1
    assert await rewards.remind_pickup_deadlines() == 0

    reminder = await OutboxMessage.get(dedupe_key=f"redemption-deadline:{redemption.id}")
    assert reminder.context["headline"] == "即将过期"


async def test_stock_never_goes_below_zero(shop):
    staff, bag = shop["staff"], shop["bag"]
    with pytest.raises(Conflict) as refused:
        await rewards.change_stock(actor=staff, reward_id=bag.id, delta=-3)
    assert refused.value.code == "insufficient_stock"
    reward = await rewards.change_stock(actor=staff, reward_id=bag.id, delta=-2)
    assert reward.stock == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"title": " "}, "title"),
        ({"cost": 0}, "cost"),
        ({"stock": -1}, "stock"),
        ({"per_user_limit": 0}, "per_user_limit"),
        ({"pickup_days": 91}, "pickup_days"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
    ],
)
async def test_bad_rewards_are_invalid(shop, values, field):
    base = {"title": "抽纸", "cost": 10, "stock": 5}
    with pytest.raises(Invalid) as refused:
        await make_reward(actor=shop["staff"], community_id=shop["community"].id, **(base | values))
    assert field in refused.value.fields


async def test_the_sale_window_must_be_in_order(shop):
    now = clock.now()
    with pytest.raises(Invalid) as refused:
        await make_reward(
            actor=shop["staff"],
            community_id=shop["community"].id,
            title="理发券",
            cost=50,
            stock=5,
            on_sale_from=now,
            on_sale_until=now - timedelta(hours=1),
        )
    assert "on_sale_until" in refused.value.fields


async def test_staff_of_another_community_cannot_put_up_rewards(shop):
    outsider = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await make_reward(
            actor=outsider, community_id=shop["community"].id, title="抽纸", cost=10, stock=5
        )
