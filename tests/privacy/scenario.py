"""The neighbourhood (tests.factories.make_neighbourhood) where a resident with a full history
closes the account: 王阿姨 (party member, bookings, service hours, points, a redemption,
wishes) beside 李师傅, a neighbour."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import httpx
from openpyxl import load_workbook

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import bookings as activity_bookings
from backend.activities.models import Activity
from backend.core.clock import clock
from backend.notices.models import SubscriptionConsent
from backend.orgs.models import Community
from backend.party import records as party_records
from backend.party import registrations as party_registrations
from backend.party.schemas import OfflineRecordIn, RegistrationIn, ReviewIn
from backend.points import ledger as points_ledger
from backend.points import rewards as rewards_service
from backend.wishes import service as wishes_service
from tests.factories import RESIDENT_PHONE, make_neighbourhood
from tests.factories.activities import freeze, make_activity
from tests.factories.points import make_reward
from tests.factories.wishes import submit_wish

NAME = "王秀英"
NICKNAME = "王阿姨"
PHONE = RESIDENT_PHONE
ADDRESS = "石门二路一百弄十二号"
NEIGHBOUR = "李师傅"
NEIGHBOUR_PHONE = "13700001111"


@dataclass
class World:
    community: Community
    staff: User
    person: User
    neighbour: User
    class_full: Activity  # the person confirmed, the neighbour waitlisted
    class_soon: Activity  # past its cancellation deadline
    own_wish_id: int  # posted by the person, claimed by the neighbour
    claimed_wish_id: int  # posted by the neighbour, claimed by the person
    service_minutes: int


def xlsx_text(content: bytes) -> str:
    """Every cell of a workbook as one string, for "who appears in this export" checks."""
    book = load_workbook(io.BytesIO(content))
    return "\n".join(
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


async def build_world() -> World:
    now = freeze()
    town = await make_neighbourhood()
    community, staff, person, neighbour = town.community, town.staff, town.resident, town.neighbour
    assert (person.nickname, neighbour.nickname) == (NICKNAME, NEIGHBOUR)

    registration = await party_registrations.register(
        user=person,
        data=RegistrationIn(
            name=NAME,
            phone=PHONE,
            work_unit="静安区卫健委",
            party_org="区卫健委机关党委",
            community_id=community.id,
            party_org_contact="刘书记",
            party_org_phone="13700002222",
            address=ADDRESS,
            skills_note="会量血压",
        ),
    )
    await party_registrations.review_registration(
        actor=staff, registration_id=registration.id, data=ReviewIn(approve=True)
    )
    record = await party_records.add_offline_record(
        actor=staff,
        data=OfflineRecordIn(
            user_id=person.id,
            community_id=community.id,
            started_at=now - timedelta(days=2, hours=3),
            ended_at=now - timedelta(days=2, hours=1),
            task="社区义诊",
        ),
    )

    await points_ledger.award(
        user_id=person.id,
        amount=40,
        source_type="test_award",
        source_id="1",
        reason="参加社区义诊",
    )
    await points_ledger.award(
        user_id=neighbour.id,
        amount=15,
        source_type="test_award",
        source_id="2",
        reason="邻居志愿服务",
    )
    reward = await make_reward(
        actor=staff, community_id=community.id, title="环保袋", cost=10, stock=5
    )
    await rewards_service.redeem_reward(user=await User.get(id=person.id), reward_id=reward.id)

    class_full = await make_activity(community, staff=staff, capacity=1, waitlist_capacity=1)
    class_soon = await make_activity(
        community,
        staff=staff,
        title="茶文化",
        capacity=3,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        booking_closes_at=now + timedelta(hours=3),
        cancel_deadline=now + timedelta(hours=1),
    )
    await activity_bookings.book_activity(user_id=person.id, activity_id=class_full.id)
    await activity_bookings.book_activity(user_id=neighbour.id, activity_id=class_full.id)
    await activity_bookings.book_activity(user_id=person.id, activity_id=class_soon.id)

    own = await submit_wish(
        user=person,
        community_id=community.id,
        title="王阿姨想请人陪同去医院复查",
        description=f"我叫{NAME}，腿脚不便，想请人周五陪我去医院，住在{ADDRESS}。",
        category="助老助残",
        address=ADDRESS,
    )
    await wishes_service.review_wish(actor=staff, wish_id=own.id, approve=True)
    await wishes_service.claim_wish(user=neighbour, wish_id=own.id)
    theirs = await submit_wish(
        user=neighbour,
        community_id=community.id,
        title="想要一副老花镜",
        description="家里的老花镜坏了，想换一副",
        category="生活帮扶",
    )
    await wishes_service.review_wish(actor=staff, wish_id=theirs.id, approve=True)
    await wishes_service.claim_wish(user=person, wish_id=theirs.id)

    await SubscriptionConsent.create(user=person, template_key="booking", remaining=2)
    # Past the tea class's cancellation deadline, before the yoga class's.
    clock.advance(timedelta(hours=2))
    return World(
        community=community,
        staff=staff,
        person=await User.get(id=person.id),
        neighbour=await User.get(id=neighbour.id),
        class_full=class_full,
        class_soon=class_soon,
        own_wish_id=own.id,
        claimed_wish_id=theirs.id,
        service_minutes=(await party_records.get_record(viewer=staff, record_id=record.id)).minutes,
    )


async def staff_outputs(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    """Every staff list and export that can name a resident, as text."""
    headers = {
        "Authorization": "Bearer "
        + accounts_service.issue_access_token(
            user_id=world.staff.id, token_version=world.staff.token_version
        )
    }
    cid = world.community.id
    today = clock.now().date()
    dates = {"start_date": (today - timedelta(days=30)).isoformat(), "end_date": today.isoformat()}
    outputs: dict[str, str] = {}
    for name, path, params in (
        ("roster", "/api/v1/party/registrations", {"community_id": cid}),
        ("roster.xlsx", "/api/v1/party/registrations/export", {"community_id": cid}),
        ("report", "/api/v1/party/report", {"community_id": cid, **dates}),
        ("report.xlsx", "/api/v1/party/report.xlsx", {"community_id": cid, **dates}),
        ("records", "/api/v1/party/service-records", {"community_id": cid}),
        ("bookings_full", f"/api/v1/activities/{world.class_full.id}/bookings", {}),
        ("bookings_full.xlsx", f"/api/v1/activities/{world.class_full.id}/bookings.xlsx", {}),
        ("bookings_soon", f"/api/v1/activities/{world.class_soon.id}/bookings", {}),
        ("bookings_soon.xlsx", f"/api/v1/activities/{world.class_soon.id}/bookings.xlsx", {}),
        ("points.xlsx", "/api/v1/points/export", {"community_id": cid, **dates}),
        ("redemptions", "/api/v1/redemptions", {"community_id": cid}),
        ("wishes", "/api/v1/staff/wishes", {"community_id": cid}),
        ("wishes.xlsx", "/api/v1/staff/wishes/export.xlsx", {"community_id": cid}),
        ("wish", f"/api/v1/wishes/{world.own_wish_id}", {}),
    ):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, (name, response.text)
        outputs[name] = xlsx_text(response.content) if name.endswith(".xlsx") else response.text
    return outputs
