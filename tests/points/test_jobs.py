"""The bot's points jobs: registered, safe to run in parallel, and their notices render."""

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.models import OutboxMessage
from backend.points import ledger, rewards
from backend.points.models import PointsLedgerEntry, Redemption
from bot import jobs_points
from bot.render import render
from bot.scheduler import JOBS, Scheduler
from tests.factories import make_community, make_staff, make_user
from tests.factories.points import make_reward

SHANGHAI = ZoneInfo("Asia/Shanghai")


def points_jobs():
    return [job for job in JOBS if job.name.startswith("points.")]


def test_the_points_jobs_are_scheduled():
    assert {job.name for job in points_jobs()} == {
        "points.expire",
        "points.expire_redemptions",
        "points.remind_pickups",
        "points.notify_expiring",
    }


async def test_two_bots_running_every_points_job_at_once_do_each_thing_once(settings, db):
    community = await make_community()
    staff = await make_staff(community)
    holder, saver = await make_user(community=community), await make_user(community=community)
    clock.set(datetime(2025, 3, 1, 9, tzinfo=SHANGHAI))
    for user in (holder, saver):
        await ledger.award(
            user_id=user.id, amount=60, source_type="activity", source_id="a1", reason="参加活动"
        )
    bag = await make_reward(
        actor=staff, community_id=community.id, title="环保袋", cost=20, stock=5, pickup_days=2
    )
    redemption = await rewards.redeem_reward(user=holder, reward_id=bag.id)

    # Day 1 and a half: the pickup reminder is due.
    clock.advance(timedelta(days=1, hours=12))
    await asyncio.gather(*(job.run(settings) for job in points_jobs() for _ in range(2)))
    assert await OutboxMessage.filter(dedupe_key__startswith="redemption-deadline").count() == 1

    # Past the pickup deadline: expired, points and stock back.
    clock.advance(timedelta(days=1))
    await asyncio.gather(
        jobs_points.expire_redemptions(settings), jobs_points.expire_redemptions(settings)
    )
    assert (await Redemption.get(id=redemption.id)).status == "expired"
    assert (await User.get(id=holder.id)).points_balance == 60

    # November of the next year: the points expire at the end of December.
    clock.set(datetime(2026, 11, 1, 8, tzinfo=SHANGHAI))
    await asyncio.gather(
        jobs_points.notify_expiring_points(settings), jobs_points.notify_expiring_points(settings)
    )
    assert await OutboxMessage.filter(dedupe_key__startswith="points-expiring").count() == 2

    clock.set(datetime(2027, 1, 1, 0, 10, tzinfo=SHANGHAI))
    await asyncio.gather(jobs_points.expire_points(settings), jobs_points.expire_points(settings))
    assert await PointsLedgerEntry.filter(source_type="expiry").count() == 2
    for user in (holder, saver):
        assert (await User.get(id=user.id)).points_balance == 0

    # Every notice the points domain wrote renders with its template.
    for message in await OutboxMessage.filter(user_id__in=[holder.id, saver.id]):
        rendered = render(
            message.template_key, message.context, now=clock.now(), timezone="Asia/Shanghai"
        )
        assert rendered.fields and rendered.url


async def test_the_scheduler_runs_the_points_jobs(settings, db):
    ran = await Scheduler(settings, points_jobs()).run_due()
    assert sorted(ran) == sorted(job.name for job in points_jobs())
