"""Notices: who may publish what, who a notice reaches, and the fan-out into the outbox."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from backend.activities.models import Booking
from backend.core.clock import clock
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.notices import service
from backend.notices.models import Notice
from backend.notices.views import notice_status
from tests.factories import Neighbourhood, make_neighbourhood, make_user
from tests.factories.activities import make_activity
from tests.factories.notices import publish_notice

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.set(NOW)


async def fan_out_all(batch_size: int = 500) -> int:
    total = 0
    while written := await service.fan_out_notices(batch_size=batch_size, max_batches=50):
        total += written
    # One more round marks a notice whose last batch was exactly full as done.
    return total + await service.fan_out_notices(batch_size=batch_size, max_batches=50)


async def user_rows(notice: Notice) -> Counter:
    rows = await OutboxMessage.filter(dedupe_key__startswith=f"notice:{notice.id}:user:")
    return Counter(row.user_id for row in rows)


async def robot_keys(notice: Notice) -> Counter:
    rows = await OutboxMessage.filter(dedupe_key__startswith=f"notice:{notice.id}:robot:")
    return Counter(row.recipient for row in rows)


@pytest.fixture
async def hood() -> Neighbourhood:
    return await make_neighbourhood()


async def publish(hood: Neighbourhood, **fields) -> Notice:
    fields.setdefault("community_id", hood.community.id)
    fields.setdefault("title", "停水通知")
    fields.setdefault("body", "3 月 5 日 9:00–15:00 小区停水，请提前储水。")
    actor = fields.pop("actor", hood.staff)
    return await publish_notice(actor=actor, **fields)


# --- who may publish what ---


async def test_staff_publish_now_and_nothing_is_sent_in_the_request(hood: Neighbourhood):
    notice = await publish(hood)
    assert notice.status == "published" and notice.publish_at == NOW
    assert notice_status(notice) == "published"
    assert await OutboxMessage.all().count() == 0


async def test_a_later_publish_time_schedules_the_notice(hood: Neighbourhood):
    local = datetime(2025, 3, 4, 8, 0)  # no offset: Shanghai time
    notice = await publish(hood, publish_at=local)
    assert notice.status == "scheduled"
    assert notice.publish_at == datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
    # A time already past means now.
    past = await publish(hood, publish_at=NOW - timedelta(days=3))
    assert past.status == "published" and past.publish_at == NOW


async def test_only_staff_of_the_community_or_street_admins_publish(hood: Neighbourhood):
    with pytest.raises(Forbidden):
        await publish(hood, actor=hood.resident)
    with pytest.raises(Forbidden):
        await publish(hood, community_id=hood.other_community.id)
    with pytest.raises(Forbidden):
        await publish(hood, community_id=None)
    assert (
        await publish(hood, actor=hood.street_admin, community_id=hood.other_community.id)
    ).community_id == hood.other_community.id
    street_wide = await publish(hood, actor=hood.street_admin, community_id=None)
    assert street_wide.community_id is None and street_wide.street_id == hood.street.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "标" * 65}, "title"),
        ({"title": "两行\n标题"}, "title"),
        ({"body": ""}, "body"),
        ({"body": "x\x00"}, "body"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"link": "http://example.com"}, "link"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": "residents", "building_ids": [1]}, "building_ids"),
        ({"audience": "workers", "unit_ids": [1]}, "unit_ids"),
        ({"audience": "workers", "building_ids": [2**40]}, "building_ids"),
        ({"publish_at": NOW + timedelta(days=181)}, "publish_at"),
        ({"activity_id": 987654}, "activity_id"),
    ],
)
async def test_bad_drafts_are_invalid(hood: Neighbourhood, fields: dict, field: str):
    with pytest.raises(Invalid) as caught:
        await publish(hood, **fields)
    assert field in caught.value.fields


async def test_buildings_and_units_must_be_within_reach(hood: Neighbourhood):
    with pytest.raises(Invalid) as caught:
        await publish(hood, audience="workers", building_ids=[hood.other_building.id])
    assert "building_ids" in caught.value.fields
    with pytest.raises(Invalid):
        await publish(hood, audience="unit_members", unit_ids=[hood.other_unit.id])
    # Street-level buildings are within reach of every community of the street.
    notice = await publish(
        hood, audience="workers", building_ids=[hood.street_building.id, hood.building.id]
    )
    assert notice.building_ids == sorted([hood.street_building.id, hood.building.id])


# --- who a notice reaches ---


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ("all", ("resident", "neighbour", "party_member", "staff", "worker", "unit_member")),
        ("residents", ("resident", "neighbour", "party_member", "staff")),
        ("party_members", ("party_member",)),
        ("workers", ("worker",)),
        ("unit_members", ("unit_member",)),
    ],
)
async def test_audiences_of_a_community(
    hood: Neighbourhood, audience: str, expected: tuple[str, ...]
):
    notice = await publish(hood, audience=audience)
    await fan_out_all()
    assert set(await user_rows(notice)) == {getattr(hood, name).id for name in expected}


async def test_street_wide_notice_reaches_every_community(hood: Neighbourhood):
    notice = await publish(hood, actor=hood.street_admin, community_id=None, audience="workers")
    await fan_out_all()
    assert set(await user_rows(notice)) == hood.ids(
        hood.worker, hood.street_worker, hood.other_worker
    )


async def test_workers_of_chosen_buildings(hood: Neighbourhood):
    notice = await publish(hood, audience="workers", building_ids=[hood.street_building.id])
    await fan_out_all()
    assert set(await user_rows(notice)) == hood.ids(hood.street_worker)


async def test_people_booked_on_an_activity(hood: Neighbourhood):
    activity = await make_activity(hood.community, staff=hood.staff, capacity=10)
    for user, status in (
        (hood.worker, "confirmed"),
        (hood.other_worker, "waitlisted"),
        (hood.resident, "cancelled"),
        (hood.party_member, "confirmed"),
    ):
        await Booking.create(activity=activity, user=user, status=status, created_at=NOW)

    booked = await publish(hood, activity_id=activity.id, title="上课地点调整")
    booked_workers = await publish(hood, activity_id=activity.id, audience="workers")
    await fan_out_all()

    # The bookers from another community's building are reached too; the cancelled are not.
    assert set(await user_rows(booked)) == hood.ids(
        hood.worker, hood.other_worker, hood.party_member
    )
    assert set(await user_rows(booked_workers)) == hood.ids(hood.worker, hood.other_worker)
    # A notice to some of the people never goes to the group robot.
    assert await robot_keys(booked) == Counter()


async def test_an_activity_of_another_community_is_refused(hood: Neighbourhood):
    activity = await make_activity(hood.community, staff=hood.staff, capacity=10)
    with pytest.raises(Invalid) as caught:
        await publish(
            hood,
            actor=hood.street_admin,
            community_id=hood.other_community.id,
            activity_id=activity.id,
        )
    assert "activity_id" in caught.value.fields


# --- fan-out ---


async def test_fan_out_goes_in_batches_and_reaches_everyone_once(hood: Neighbourhood):
    hood.community.wecom_robot_key = "robot-a"
    await hood.community.save()
    extra = [await make_user(community=hood.community) for _ in range(7)]
    notice = await publish(hood)
    audience = hood.ids(
        hood.resident, hood.neighbour, hood.party_member, hood.staff, hood.worker, hood.unit_member
    )
    audience |= hood.ids(*extra)

    assert await service.fan_out_notices(batch_size=4, max_batches=1) == 4
    assert sum((await user_rows(notice)).values()) == 4
    assert await robot_keys(notice) == Counter({"robot-a": 1})
    await fan_out_all(batch_size=4)

    rows = await user_rows(notice)
    assert set(rows) == audience and set(rows.values()) == {1}
    assert await robot_keys(notice) == Counter({"robot-a": 1})
    refreshed = await Notice.get(id=notice.id)
    assert refreshed.fanout_done_at is not None and refreshed.fanout_count == len(audience)
    row = await OutboxMessage.filter(user_id=hood.resident.id).first()
    assert row.channel == "user" and row.template_key == "notice"
    assert row.context["title"] == "停水通知"
    assert row.context["url"] == f"/h5/notices/{notice.id}"
    assert "body" not in row.context  # recipients' messages carry no body, only the robot's


async def test_parallel_fan_outs_write_each_row_once(hood: Neighbourhood):
    for _ in range(30):
        await make_user(community=hood.community)
    notice = await publish(hood)

    await asyncio.gather(*(service.fan_out_notices(batch_size=4, max_batches=20) for _ in range(4)))
    await fan_out_all(batch_size=4)

    rows = await user_rows(notice)
    assert len(rows) == 36 and set(rows.values()) == {1}
    assert (await Notice.get(id=notice.id)).fanout_count == 36


async def test_street_wide_notice_goes_to_each_communitys_robot(hood: Neighbourhood):
    hood.community.wecom_robot_key = "robot-a"
    await hood.community.save()
    hood.other_community.wecom_robot_key = "robot-b"
    await hood.other_community.save()
    notice = await publish(hood, actor=hood.street_admin, community_id=None)
    await fan_out_all()
    assert await robot_keys(notice) == Counter({"robot-a": 1, "robot-b": 1})
    robot = await OutboxMessage.get(dedupe_key=f"notice:{notice.id}:robot:{hood.community.id}")
    assert robot.channel == "wecom" and robot.context["body"].startswith("3 月 5 日")
    assert robot.context["link"].endswith(f"/h5/notices/{notice.id}")


async def test_scheduled_notice_waits_for_its_time_and_can_be_cancelled(hood: Neighbourhood):
    later = await publish(hood, publish_at=NOW + timedelta(hours=2))
    cancelled = await publish(hood, publish_at=NOW + timedelta(hours=2))
    assert (await service.cancel_notice(actor=hood.staff, notice_id=cancelled.id)).status == (
        "cancelled"
    )
    with pytest.raises(Conflict) as caught:
        await service.cancel_notice(actor=hood.staff, notice_id=cancelled.id)
    assert caught.value.code == "notice_not_cancellable"

    await fan_out_all()
    assert await OutboxMessage.all().count() == 0

    clock.advance(timedelta(hours=2))
    await fan_out_all()
    assert (await Notice.get(id=later.id)).status == "published"
    assert len(await user_rows(later)) == 6
    assert await user_rows(cancelled) == Counter()
    with pytest.raises(Conflict):
        await service.cancel_notice(actor=hood.staff, notice_id=later.id)


async def test_cancelling_needs_the_notices_staff(hood: Neighbourhood):
    notice = await publish(hood, publish_at=NOW + timedelta(hours=1))
    with pytest.raises(Forbidden):
        await service.cancel_notice(actor=hood.resident, notice_id=notice.id)
    with pytest.raises(NotFound):
        await service.cancel_notice(actor=hood.staff, notice_id=notice.id + 100)


# --- reading ---


async def test_everyone_reads_published_notices_only(hood: Neighbourhood):
    shown = await publish(hood, title="已发布")
    street_wide = await publish(hood, actor=hood.street_admin, community_id=None, title="全街道")
    other = await publish(
        hood, actor=hood.street_admin, community_id=hood.other_community.id, title="别的社区"
    )
    hidden = await publish(hood, publish_at=NOW + timedelta(hours=1), title="定时")

    everything = await service.list_notices(page=PageRequest())
    assert [n.id for n in everything.items] == [other.id, street_wide.id, shown.id]
    of_a = await service.list_notices(page=PageRequest(), community_id=hood.community.id)
    assert [n.id for n in of_a.items] == [street_wide.id, shown.id]

    with pytest.raises(NotFound):
        await service.get_notice(notice_id=hidden.id, viewer=hood.resident)
    assert (await service.get_notice(notice_id=hidden.id, viewer=hood.staff)).id == hidden.id

    scheduled = await service.list_notices(
        page=PageRequest(), status="scheduled", viewer=hood.staff
    )
    assert [n.id for n in scheduled.items] == [hidden.id]
    with pytest.raises(Forbidden):
        await service.list_notices(page=PageRequest(), status="scheduled", viewer=hood.resident)

    clock.advance(timedelta(hours=1))
    # Due: readable at once, before the bot has marked it published.
    assert (await service.get_notice(notice_id=hidden.id)).id == hidden.id
