"""Notices: who may publish what, who a notice reaches, and the fan-out into the outbox."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from backend.accounts.models import User
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.notices import service
from backend.notices.models import Notice
from tests.factories import make_building, make_community, make_street, make_unit, make_user

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


class Town:
    """Two communities of one street with every kind of person in them."""

    async def build(self) -> Town:
        self.street = await make_street()
        self.a = await make_community(street=self.street)
        self.b = await make_community(street=self.street)
        self.a_tower = await make_building(community=self.a)
        self.street_tower = await make_building(community=None)
        self.b_tower = await make_building(community=self.b)
        self.a_school = await make_unit(community=self.a)
        self.b_school = await make_unit(community=self.b)
        self.staff = await make_user(community=self.a, roles=["staff"])
        self.admin = await make_user(roles=["street_admin"])
        self.resident = await make_user(community=self.a)
        self.party = await make_user(community=self.a, roles=["party_member"])
        self.worker = await make_user(building=self.a_tower)
        self.street_worker = await make_user(building=self.street_tower)
        self.pupil_parent = await make_user(unit=self.a_school)
        self.b_resident = await make_user(community=self.b)
        self.b_worker = await make_user(building=self.b_tower)
        self.nobody = await make_user()
        return self

    def ids(self, *users: User) -> set[int]:
        return {u.id for u in users}


@pytest.fixture
async def town() -> Town:
    return await Town().build()


async def publish(town: Town, **fields) -> Notice:
    fields.setdefault("community_id", town.a.id)
    fields.setdefault("title", "停水通知")
    fields.setdefault("body", "3 月 5 日 9:00–15:00 小区停水，请提前储水。")
    actor = fields.pop("actor", town.staff)
    return await service.create_notice(actor=actor, **fields)


# --- who may publish what ---


async def test_staff_publish_now_and_nothing_is_sent_in_the_request(town: Town):
    notice = await publish(town)
    assert notice.status == "published" and notice.publish_at == NOW
    assert service.notice_status(notice) == "published"
    assert await OutboxMessage.all().count() == 0


async def test_a_later_publish_time_schedules_the_notice(town: Town):
    local = datetime(2025, 3, 4, 8, 0)  # no offset: Shanghai time
    notice = await publish(town, publish_at=local)
    assert notice.status == "scheduled"
    assert notice.publish_at == datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
    # A time already past means now.
    past = await publish(town, publish_at=NOW - timedelta(days=3))
    assert past.status == "published" and past.publish_at == NOW


async def test_only_staff_of_the_community_or_street_admins_publish(town: Town):
    with pytest.raises(Forbidden):
        await publish(town, actor=town.resident)
    with pytest.raises(Forbidden):
        await publish(town, community_id=town.b.id)
    with pytest.raises(Forbidden):
        await publish(town, community_id=None)
    assert (await publish(town, actor=town.admin, community_id=town.b.id)).community_id == town.b.id
    street_wide = await publish(town, actor=town.admin, community_id=None)
    assert street_wide.community_id is None and street_wide.street_id == town.street.id


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
async def test_bad_drafts_are_invalid(town: Town, fields: dict, field: str):
    with pytest.raises(Invalid) as caught:
        await publish(town, **fields)
    assert field in caught.value.fields


async def test_buildings_and_units_must_be_within_reach(town: Town):
    with pytest.raises(Invalid) as caught:
        await publish(town, audience="workers", building_ids=[town.b_tower.id])
    assert "building_ids" in caught.value.fields
    with pytest.raises(Invalid):
        await publish(town, audience="unit_members", unit_ids=[town.b_school.id])
    # Street-level buildings are within reach of every community of the street.
    notice = await publish(
        town, audience="workers", building_ids=[town.street_tower.id, town.a_tower.id]
    )
    assert notice.building_ids == sorted([town.street_tower.id, town.a_tower.id])


# --- who a notice reaches ---


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ("all", ("resident", "party", "staff", "worker", "pupil_parent")),
        ("residents", ("resident", "party", "staff")),
        ("party_members", ("party",)),
        ("workers", ("worker",)),
        ("unit_members", ("pupil_parent",)),
    ],
)
async def test_audiences_of_a_community(town: Town, audience: str, expected: tuple[str, ...]):
    notice = await publish(town, audience=audience)
    await fan_out_all()
    assert set(await user_rows(notice)) == {getattr(town, name).id for name in expected}


async def test_street_wide_notice_reaches_every_community(town: Town):
    notice = await publish(town, actor=town.admin, community_id=None, audience="workers")
    await fan_out_all()
    assert set(await user_rows(notice)) == town.ids(town.worker, town.street_worker, town.b_worker)


async def test_workers_of_chosen_buildings(town: Town):
    notice = await publish(town, audience="workers", building_ids=[town.street_tower.id])
    await fan_out_all()
    assert set(await user_rows(notice)) == town.ids(town.street_worker)


async def make_activity(town: Town) -> Activity:
    return await Activity.create(
        community=town.a,
        title="午间一小时·茶文化",
        category="午间一小时",
        starts_at=NOW + timedelta(days=2),
        ends_at=NOW + timedelta(days=2, hours=1),
        booking_opens_at=NOW - timedelta(days=1),
        booking_closes_at=NOW + timedelta(days=1),
        cancel_deadline=NOW + timedelta(days=1),
        capacity=10,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_people_booked_on_an_activity(town: Town):
    activity = await make_activity(town)
    for user, status in (
        (town.worker, "confirmed"),
        (town.b_worker, "waitlisted"),
        (town.resident, "cancelled"),
        (town.party, "confirmed"),
    ):
        await Booking.create(activity=activity, user=user, status=status, created_at=NOW)

    booked = await publish(town, activity_id=activity.id, title="上课地点调整")
    booked_workers = await publish(town, activity_id=activity.id, audience="workers")
    await fan_out_all()

    # The bookers from another community's building are reached too; the cancelled are not.
    assert set(await user_rows(booked)) == town.ids(town.worker, town.b_worker, town.party)
    assert set(await user_rows(booked_workers)) == town.ids(town.worker, town.b_worker)
    # A notice to some of the people never goes to the group robot.
    assert await robot_keys(booked) == Counter()


async def test_an_activity_of_another_community_is_refused(town: Town):
    activity = await make_activity(town)
    with pytest.raises(Invalid) as caught:
        await publish(town, actor=town.admin, community_id=town.b.id, activity_id=activity.id)
    assert "activity_id" in caught.value.fields


# --- fan-out ---


async def test_fan_out_goes_in_batches_and_reaches_everyone_once(town: Town):
    town.a.wecom_robot_key = "robot-a"
    await town.a.save()
    extra = [await make_user(community=town.a) for _ in range(7)]
    notice = await publish(town)
    audience = town.ids(town.resident, town.party, town.staff, town.worker, town.pupil_parent)
    audience |= town.ids(*extra)

    assert await service.fan_out_notices(batch_size=4, max_batches=1) == 4
    assert sum((await user_rows(notice)).values()) == 4
    assert await robot_keys(notice) == Counter({"robot-a": 1})
    await fan_out_all(batch_size=4)

    rows = await user_rows(notice)
    assert set(rows) == audience and set(rows.values()) == {1}
    assert await robot_keys(notice) == Counter({"robot-a": 1})
    refreshed = await Notice.get(id=notice.id)
    assert refreshed.fanout_done_at is not None and refreshed.fanout_count == len(audience)
    row = await OutboxMessage.filter(user_id=town.resident.id).first()
    assert row.channel == "user" and row.template_key == "notice"
    assert row.context["title"] == "停水通知"
    assert row.context["url"] == f"/h5/notices/{notice.id}"
    assert "body" not in row.context  # recipients' messages carry no body, only the robot's


async def test_parallel_fan_outs_write_each_row_once(town: Town):
    for _ in range(30):
        await make_user(community=town.a)
    notice = await publish(town)

    await asyncio.gather(*(service.fan_out_notices(batch_size=4, max_batches=20) for _ in range(4)))
    await fan_out_all(batch_size=4)

    rows = await user_rows(notice)
    assert len(rows) == 35 and set(rows.values()) == {1}
    assert (await Notice.get(id=notice.id)).fanout_count == 35


async def test_street_wide_notice_goes_to_each_communitys_robot(town: Town):
    town.a.wecom_robot_key = "robot-a"
    await town.a.save()
    town.b.wecom_robot_key = "robot-b"
    await town.b.save()
    notice = await publish(town, actor=town.admin, community_id=None)
    await fan_out_all()
    assert await robot_keys(notice) == Counter({"robot-a": 1, "robot-b": 1})
    robot = await OutboxMessage.get(dedupe_key=f"notice:{notice.id}:robot:{town.a.id}")
    assert robot.channel == "wecom" and robot.context["body"].startswith("3 月 5 日")
    assert robot.context["link"].endswith(f"/h5/notices/{notice.id}")


async def test_scheduled_notice_waits_for_its_time_and_can_be_cancelled(town: Town):
    later = await publish(town, publish_at=NOW + timedelta(hours=2))
    cancelled = await publish(town, publish_at=NOW + timedelta(hours=2))
    assert (await service.cancel_notice(actor=town.staff, notice_id=cancelled.id)).status == (
        "cancelled"
    )
    with pytest.raises(Conflict) as caught:
        await service.cancel_notice(actor=town.staff, notice_id=cancelled.id)
    assert caught.value.code == "notice_not_cancellable"

    await fan_out_all()
    assert await OutboxMessage.all().count() == 0

    clock.advance(timedelta(hours=2))
    await fan_out_all()
    assert (await Notice.get(id=later.id)).status == "published"
    assert len(await user_rows(later)) == 5
    assert await user_rows(cancelled) == Counter()
    with pytest.raises(Conflict):
        await service.cancel_notice(actor=town.staff, notice_id=later.id)


async def test_cancelling_needs_the_notices_staff(town: Town):
    notice = await publish(town, publish_at=NOW + timedelta(hours=1))
    with pytest.raises(Forbidden):
        await service.cancel_notice(actor=town.resident, notice_id=notice.id)
    with pytest.raises(NotFound):
        await service.cancel_notice(actor=town.staff, notice_id=notice.id + 100)


# --- reading ---


async def test_everyone_reads_published_notices_only(town: Town):
    shown = await publish(town, title="已发布")
    street_wide = await publish(town, actor=town.admin, community_id=None, title="全街道")
    other = await publish(town, actor=town.admin, community_id=town.b.id, title="别的社区")
    hidden = await publish(town, publish_at=NOW + timedelta(hours=1), title="定时")

    everything = await service.list_notices(page=PageRequest())
    assert [n.id for n in everything.items] == [other.id, street_wide.id, shown.id]
    of_a = await service.list_notices(page=PageRequest(), community_id=town.a.id)
    assert [n.id for n in of_a.items] == [street_wide.id, shown.id]

    with pytest.raises(NotFound):
        await service.get_notice(notice_id=hidden.id, viewer=town.resident)
    assert (await service.get_notice(notice_id=hidden.id, viewer=town.staff)).id == hidden.id

    scheduled = await service.list_notices(
        page=PageRequest(), status="scheduled", viewer=town.staff
    )
    assert [n.id for n in scheduled.items] == [hidden.id]
    with pytest.raises(Forbidden):
        await service.list_notices(page=PageRequest(), status="scheduled", viewer=town.resident)

    clock.advance(timedelta(hours=1))
    # Due: readable at once, before the bot has marked it published.
    assert (await service.get_notice(notice_id=hidden.id)).id == hidden.id
