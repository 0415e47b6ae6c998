"""Service records: QR check-in and out, minutes per Shanghai day under the day cap (across
midnight, with an injected clock), points exactly once, offline records, corrections and
their audit trail, hours per member/post/community, the monthly summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from backend.core import checkin
from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.party import exceptions, hours, jobs, posts, records
from backend.party.models import ServiceRecord, ServiceRecordAudit, ServiceRecordDay
from backend.party.schemas import CorrectionIn, OfflineRecordIn
from backend.points.models import PointsLedgerEntry
from tests.factories import (
    SHANGHAI,
    local,
    make_community,
    make_staff,
    make_street_admin,
    make_user,
)
from tests.factories.party import make_member, make_post
from tests.factories.points import make_rule

CAP = 480  # the default party_daily_minutes_cap
POINTS_PER_HOUR = 10  # the built-in service_hour rule


def code_for(post) -> str:
    return checkin.current_code(subject=records.post_subject(post.id))[0]


async def _member_on_post(**post_overrides):
    clock.set(local(2026, 2, 1, 9, 0))
    community = await make_community()
    staff = await make_staff(community)
    member, _ = await make_member(community, staff)
    post = await make_post(community, staff, **post_overrides)
    if post.kind == "post":
        await posts.claim_post(user=member, post_id=post.id)
    return community, staff, member, post


async def _serve(member, post, start: datetime, end: datetime) -> ServiceRecord:
    clock.set(start)
    await records.check_in(user=member, post_id=post.id, code=code_for(post))
    clock.set(end)
    return await records.check_out(user=member, post_id=post.id, code=code_for(post))


async def _days(record: ServiceRecord) -> dict[date, int]:
    rows = await ServiceRecordDay.filter(record_id=record.id).values_list("service_date", "minutes")
    return dict(rows)


# --- splitting minutes by local day (pure) ---


def test_split_by_local_day_at_shanghai_midnight():
    parts = hours.split_by_local_day(local(2026, 3, 1, 23, 0), local(2026, 3, 2, 1, 30), SHANGHAI)
    assert parts == [(date(2026, 3, 1), 60), (date(2026, 3, 2), 90)]
    # Midnight in Shanghai is 16:00 UTC: a UTC-day split would be wrong here.
    utc_span = hours.split_by_local_day(
        datetime(2026, 3, 1, 15, 0, tzinfo=UTC), datetime(2026, 3, 1, 17, 0, tzinfo=UTC), SHANGHAI
    )
    assert utc_span == [(date(2026, 3, 1), 60), (date(2026, 3, 2), 60)]


def test_split_parts_add_up_to_the_whole_minutes():
    start = local(2026, 3, 1, 23, 59, 50)
    end = local(2026, 3, 3, 0, 1, 40)
    parts = hours.split_by_local_day(start, end, SHANGHAI)
    assert [d for d, _ in parts] == [date(2026, 3, 2), date(2026, 3, 3)]
    assert parts == [(date(2026, 3, 2), 1440), (date(2026, 3, 3), 1)]
    assert sum(m for _, m in parts) == int((end - start).total_seconds()) // 60
    assert hours.split_by_local_day(start, start, SHANGHAI) == []


# --- check-in and out ---


async def test_check_in_and_out_credits_minutes_and_points_once(db):
    _, _, member, post = await _member_on_post()
    clock.set(local(2026, 3, 7, 9, 0))
    record = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    assert record.status == "open" and record.source == "qr"
    assert (await records.open_record_at(user=member, post_id=post.id)).id == record.id
    with pytest.raises(exceptions.AlreadyCheckedIn):
        await records.check_in(user=member, post_id=post.id, code=code_for(post))

    clock.set(local(2026, 3, 7, 11, 30, 20))
    closed = await records.check_out(user=member, post_id=post.id, code=code_for(post))
    assert closed.status == "closed" and closed.open_key is None
    assert (closed.raw_minutes, closed.minutes) == (150, 150)
    assert closed.points == 150 * POINTS_PER_HOUR // 60 == 25
    ledger = await PointsLedgerEntry.filter(user_id=member.id, source_type="party_service")
    assert [(e.delta, e.source_id) for e in ledger] == [(25, str(record.id))]
    with pytest.raises(exceptions.NotCheckedIn):
        await records.check_out(user=member, post_id=post.id, code=code_for(post))
    # Checking in again later is a new record.
    clock.set(local(2026, 3, 8, 9, 0))
    again = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    assert again.id != record.id


async def test_service_is_priced_by_the_rule_in_force_when_it_began(db):
    _, _, member, post = await _member_on_post()
    boss = await make_street_admin()
    # 6 points an hour × 1.5 from 1 March, at most 20 a day.
    await make_rule(
        actor=boss,
        event_type="service_hour",
        points=6,
        multiplier_percent=150,
        daily_cap=20,
        effective_from=local(2026, 3, 1, 0, 0),
    )
    february = await _serve(member, post, local(2026, 2, 27, 9, 0), local(2026, 2, 27, 10, 0))
    march = await _serve(member, post, local(2026, 3, 7, 9, 0), local(2026, 3, 7, 10, 40))
    later = await _serve(member, post, local(2026, 3, 7, 14, 0), local(2026, 3, 7, 16, 0))
    # 1 h at the built-in 10; 100 min × 6 × 1.5 = 15; then 2 h would be 18 but 5 are left today.
    assert (february.points, march.points, later.points) == (10, 15, 5)
    ledger = await PointsLedgerEntry.filter(user_id=member.id, source_type="party_service")
    assert sorted(e.delta for e in ledger) == [5, 10, 15]


async def test_codes_and_who_may_check_in(db):
    community, staff, member, post = await _member_on_post()
    clock.set(local(2026, 3, 7, 9, 0))
    with pytest.raises(exceptions.CheckinCodeInvalid) as caught:
        await records.check_in(user=member, post_id=post.id, code="000000x")
    assert caught.value.code == "checkin_code_invalid"
    other_post = await make_post(community, staff, title="六乱监督岗")
    with pytest.raises(exceptions.CheckinCodeInvalid):  # another post's code
        await records.check_in(user=member, post_id=post.id, code=code_for(other_post))
    with pytest.raises(exceptions.NotYourPost):  # a post the member does not hold
        await records.check_in(user=member, post_id=other_post.id, code=code_for(other_post))
    resident = await make_user(community=community)
    with pytest.raises(exceptions.NotPartyMember):
        await records.check_in(user=resident, post_id=post.id, code=code_for(post))
    # A code photographed a minute ago has rotated out.
    old_code = code_for(post)
    clock.advance(timedelta(seconds=61))
    with pytest.raises(exceptions.CheckinCodeInvalid):
        await records.check_in(user=member, post_id=post.id, code=old_code)
    # A community task takes any approved member of the community, without claiming.
    task = await make_post(community, staff, kind="task", capacity=0, title="社区大扫除")
    record = await records.check_in(user=member, post_id=task.id, code=code_for(task))
    assert record.task == "社区大扫除"


async def test_only_staff_of_the_community_get_the_code(db):
    _, staff, member, post = await _member_on_post()
    code = await records.checkin_code(actor=staff, post_id=post.id)
    assert checkin.verify_code(subject=f"post:{post.id}", code=code.code)
    assert f"/h5/party/checkin?post={post.id}&code={code.code}" in code.url
    other_staff = await make_staff(await make_community())
    for outsider in (member, other_staff):
        with pytest.raises(Forbidden):
            await records.checkin_code(actor=outsider, post_id=post.id)


# --- the day cap, across midnight ---


async def test_minutes_split_at_shanghai_midnight_and_capped_per_day(db):
    # A post served round the clock, so a night shift can be checked in.
    community, staff, member, post = await _member_on_post(open_from=0, open_until=24 * 60)
    # 7.5 hours on 1 March leave 30 minutes under the 8-hour cap that day.
    clock.set(local(2026, 3, 1, 17, 0))
    day_shift = await records.add_offline_record(
        actor=staff,
        data=OfflineRecordIn(
            user_id=member.id,
            community_id=community.id,
            post_id=post.id,
            started_at=local(2026, 3, 1, 9, 0),
            ended_at=local(2026, 3, 1, 16, 30),
        ),
    )
    assert day_shift.minutes == 450

    night = await _serve(member, post, local(2026, 3, 1, 23, 0), local(2026, 3, 2, 1, 30))

    assert night.raw_minutes == 150
    assert await _days(night) == {date(2026, 3, 1): 30, date(2026, 3, 2): 90}
    assert night.minutes == 120
    assert night.points == 120 * POINTS_PER_HOUR // 60
    # The next day's own cap still has 390 minutes: a 7-hour afternoon is capped there.
    afternoon = await _serve(member, post, local(2026, 3, 2, 13, 0), local(2026, 3, 2, 20, 0))
    assert (afternoon.raw_minutes, afternoon.minutes) == (420, 390)
    per_day = await hours.service_hours(
        actor=staff,
        group_by="member",
        community_id=community.id,
        start_date=date(2026, 3, 1),
        end_date=date(2026, 3, 1),
    )
    assert [(r.key, r.minutes) for r in per_day] == [(member.id, CAP)]
    total = await ServiceRecordDay.filter(user_id=member.id).values_list("minutes", flat=True)
    assert sum(total) == 2 * CAP


async def test_a_utc_day_boundary_is_not_a_local_one(db):
    _, _, member, post = await _member_on_post()
    # 23:00–01:00 UTC is 07:00–09:00 in Shanghai: one local day.
    record = await _serve(
        member,
        post,
        datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
    )
    assert await _days(record) == {date(2026, 3, 2): 120}


# --- forgotten check-outs, offline records and corrections ---


async def test_a_forgotten_check_out_expires_and_staff_correct_it_once(db):
    _community, staff, member, post = await _member_on_post()
    clock.set(local(2026, 3, 7, 9, 0))
    record = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    clock.set(local(2026, 3, 7, 21, 1))  # past the 12-hour longest session
    expired = await records.check_out(user=member, post_id=post.id, code=code_for(post))
    assert expired.id == record.id and expired.status == "expired" and expired.minutes == 0
    assert not await PointsLedgerEntry.exists(user_id=member.id, source_type="party_service")
    # The member is free to check in again (next morning: 21:01 is past the post's hours).
    clock.set(local(2026, 3, 8, 7, 0))
    again = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    assert again.status == "open"

    corrected = await records.correct_record(
        actor=staff,
        record_id=record.id,
        data=CorrectionIn(
            started_at=local(2026, 3, 7, 9, 0),
            ended_at=local(2026, 3, 7, 12, 0),
            reason="本人忘记签退，经岗位负责人确认服务到12点",
        ),
    )
    assert corrected.status == "closed" and corrected.minutes == 180 and corrected.points == 30
    # A second correction recomputes minutes but never pays the record again.
    recorrected = await records.correct_record(
        actor=staff,
        record_id=record.id,
        data=CorrectionIn(
            started_at=local(2026, 3, 7, 9, 0),
            ended_at=local(2026, 3, 7, 13, 0),
            reason="核对签到表后更正",
        ),
    )
    assert recorrected.minutes == 240 and recorrected.points == 30
    assert await _days(recorrected) == {date(2026, 3, 7): 240}
    ledger = await PointsLedgerEntry.filter(
        user_id=member.id, source_type="party_service", source_id=str(record.id)
    )
    assert [e.delta for e in ledger] == [30]
    audits = await records.record_audits(record=recorrected)
    assert [a.action for a in audits] == ["expired", "corrected", "corrected"]
    assert audits[1].actor_id == staff.id and audits[1].before["status"] == "expired"
    assert audits[2].before["minutes"] == 180 and audits[2].after["minutes"] == 240


async def test_stale_check_ins_expire_by_the_job(db):
    _, _, member, post = await _member_on_post()
    clock.set(local(2026, 3, 7, 9, 0))
    record = await records.check_in(user=member, post_id=post.id, code=code_for(post))
    assert await jobs.expire_stale_records() == 0
    clock.advance(timedelta(hours=13))
    assert await jobs.expire_stale_records() == 1
    assert await jobs.expire_stale_records() == 0
    assert (await ServiceRecord.get(id=record.id)).status == "expired"
    assert await ServiceRecordAudit.filter(record_id=record.id, action="expired").count() == 1


async def test_offline_records_are_staff_only_validated_and_audited(db):
    community, staff, member, _post = await _member_on_post()
    clock.set(local(2026, 3, 10, 12, 0))
    other_staff = await make_staff(await make_community())
    resident = await make_user(community=community)

    def offline(**overrides) -> OfflineRecordIn:
        values = {
            "user_id": member.id,
            "community_id": community.id,
            "task": "敬老院慰问",
            "started_at": local(2026, 3, 9, 14, 0),
            "ended_at": local(2026, 3, 9, 16, 0),
            "note": "纸质签到表补录",
        }
        values.update(overrides)
        return OfflineRecordIn(**values)

    with pytest.raises(Forbidden):
        await records.add_offline_record(actor=other_staff, data=offline())
    with pytest.raises(Invalid) as caught:
        await records.add_offline_record(
            actor=staff,
            data=offline(user_id=resident.id, task="", ended_at=local(2026, 3, 9, 13, 0)),
        )
    assert set(caught.value.fields) == {"user_id", "task", "ended_at"}
    with pytest.raises(Invalid) as future:
        await records.add_offline_record(
            actor=staff,
            data=offline(started_at=local(2026, 3, 11, 9), ended_at=local(2026, 3, 11, 10)),
        )
    assert "ended_at" in future.value.fields

    record = await records.add_offline_record(actor=staff, data=offline())
    assert (record.source, record.status, record.minutes, record.points) == (
        "offline",
        "closed",
        120,
        20,
    )
    assert record.created_by_id == staff.id
    audit = (await records.record_audits(record=record))[0]
    assert (audit.action, audit.actor_id, audit.reason) == ("created", staff.id, "纸质签到表补录")
    # The member sees it, staff of other communities do not, nor may they correct it.
    assert (await records.get_record(viewer=member, record_id=record.id)).id == record.id
    with pytest.raises(NotFound):
        await records.get_record(viewer=other_staff, record_id=record.id)
    with pytest.raises(NotFound):
        await records.correct_record(
            actor=other_staff,
            record_id=record.id,
            data=CorrectionIn(
                started_at=local(2026, 3, 9, 14, 0), ended_at=local(2026, 3, 9, 15, 0), reason="x"
            ),
        )
    with pytest.raises(Forbidden):
        await records.correct_record(
            actor=member,
            record_id=record.id,
            data=CorrectionIn(
                started_at=local(2026, 3, 9, 14, 0),
                ended_at=local(2026, 3, 9, 18, 0),
                reason="多算点",
            ),
        )


# --- hours and the monthly summary ---


async def test_hours_per_member_post_and_community(db):
    community, staff, alice, green = await _member_on_post()
    bob, _ = await make_member(community, staff, name="王五")
    law = await make_post(community, staff, title="法律咨询岗")
    await posts.claim_post(user=bob, post_id=law.id)
    await _serve(alice, green, local(2026, 3, 1, 9, 0), local(2026, 3, 1, 11, 0))
    await _serve(alice, green, local(2026, 4, 1, 9, 0), local(2026, 4, 1, 10, 0))
    await _serve(bob, law, local(2026, 3, 5, 9, 0), local(2026, 3, 5, 9, 30))

    async def rows(group_by, **kwargs):
        found = await hours.service_hours(
            actor=staff, group_by=group_by, community_id=community.id, **kwargs
        )
        return [(r.key, r.name, r.minutes) for r in found]

    march = {"start_date": date(2026, 3, 1), "end_date": date(2026, 3, 31)}
    assert await rows("member", **march) == [(alice.id, "李建国", 120), (bob.id, "王五", 30)]
    assert await rows("post", **march) == [
        (green.id, "绿化养护岗", 120),
        (law.id, "法律咨询岗", 30),
    ]
    assert await rows("community", **march) == [(community.id, community.name, 150)]
    assert await rows("member", start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)) == [
        (alice.id, "李建国", 180),
        (bob.id, "王五", 30),
    ]
    with pytest.raises(Invalid):
        await rows("member", start_date=date(2026, 4, 1), end_date=date(2026, 3, 1))
    mine = await records.my_service(user=alice, page=PageRequest())
    assert mine.total_minutes == 180 and len(mine.page.items) == 2


async def test_monthly_summary_is_queued_once_per_member(db):
    community, staff, alice, post = await _member_on_post()
    bob, _ = await make_member(community, staff, name="王五")
    await _serve(alice, post, local(2026, 3, 1, 9, 0), local(2026, 3, 1, 11, 0))
    clock.set(local(2026, 4, 1, 8, 0))
    assert await jobs.send_monthly_summaries() == 2
    await jobs.send_monthly_summaries()
    notices = await OutboxMessage.filter(dedupe_key__startswith="party-monthly:").order_by("id")
    assert [(n.user_id, n.dedupe_key) for n in notices] == [
        (alice.id, f"party-monthly:{alice.id}:2026-03"),
        (bob.id, f"party-monthly:{bob.id}:2026-03"),
    ]
    assert "2.0 小时" in notices[0].context["body"]
    assert "还没有服务记录" in notices[1].context["body"]
