"""The roster search by phone lists everyone registered with that number (masked), so a
number two members share is never resolved to one of them behind the staff's back."""

from __future__ import annotations

from backend.core.clock import clock
from backend.core.pagination import PageRequest
from backend.party import registrations, views
from tests.factories import local, make_community, make_staff
from tests.factories.party import make_member


async def test_a_shared_phone_lists_every_member_with_it(db):
    clock.set(local(2026, 3, 7, 9, 0))
    community = await make_community()
    staff = await make_staff(community)
    husband, _ = await make_member(community, staff, name="李建国", phone="13912345678")
    wife, _ = await make_member(community, staff, name="王秀英", phone="139 1234 5678")
    await make_member(community, staff, name="张晓", phone="13700000000")

    page = await registrations.list_registrations(
        actor=staff,
        page=PageRequest(limit=20),
        filters=views.RosterFilter(community_id=community.id, q="13912345678"),
    )
    assert sorted(r.user_id for r in page.items) == sorted([husband.id, wife.id])
    assert {views.registration_phone(r) for r in page.items} == {"139****5678"}
