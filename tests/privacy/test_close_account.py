"""注销: the person is gone from every staff list and export, their sessions end at once,
open matters end as they would by hand, and every total stays as it was."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook

from backend.accounts import service as accounts_service
from backend.accounts.models import RoleGrant, User, WechatIdentity
from backend.activities.models import Activity, Booking
from backend.core.models import OutboxMessage
from backend.notices.models import SubscriptionConsent
from backend.party.models import PartyRegistration, ServiceRecord
from backend.points.models import PointsLedgerEntry
from backend.privacy import service as privacy_service
from backend.wishes.models import Wish
from tests.privacy.scenario import (
    ADDRESS,
    NAME,
    NEIGHBOUR,
    NICKNAME,
    PHONE,
    build_world,
    staff_outputs,
)


def _points_issued(content: bytes) -> int:
    summary = load_workbook(io.BytesIO(content))["汇总"]
    return next(r[1] for r in summary.iter_rows(values_only=True) if r[0] == "合计发放")


async def _totals(client: httpx.AsyncClient, world) -> dict:
    staff_token = accounts_service.issue_access_token(user_id=world.staff.id)
    headers = {"Authorization": f"Bearer {staff_token}"}
    cid = world.community.id
    report = (
        await client.get("/api/v1/party/report", params={"community_id": cid}, headers=headers)
    ).json()
    today = (await Activity.get(id=world.class_full.id)).created_at.date().isoformat()
    points = await client.get(
        "/api/v1/points/export",
        params={"community_id": cid, "start_date": "2025-01-01", "end_date": today},
        headers=headers,
    )
    full = await Activity.get(id=world.class_full.id)
    soon = await Activity.get(id=world.class_soon.id)
    return {
        "party_minutes": report["total_minutes"],
        "points_issued": _points_issued(points.content),
        "full_booked": full.booked,
        "soon_booked": soon.booked,
        "ledger_rows": await PointsLedgerEntry.all().count(),
        "records": await ServiceRecord.all().count(),
        "wishes": await Wish.all().count(),
    }


async def test_closing_removes_the_person_and_keeps_every_total(client: httpx.AsyncClient):
    world = await build_world()
    token = accounts_service.issue_access_token(user_id=world.person.id)
    cookie = accounts_service.issue_session_token(user_id=world.person.id)
    before = await staff_outputs(client, world)
    assert NAME in before["roster"] and NAME in before["roster.xlsx"]
    assert NICKNAME in before["bookings_full.xlsx"] and NICKNAME in before["points.xlsx"]
    assert ADDRESS in before["wish"] or ADDRESS in before["wishes"]
    totals = await _totals(client, world)
    assert totals["party_minutes"] == world.service_minutes > 0
    assert totals["full_booked"] == 1 and totals["soon_booked"] == 1

    refused = await client.request(
        "DELETE",
        "/api/v1/me",
        json={"confirm": "确定"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"]["confirm"]
    assert (await User.get(id=world.person.id)).erased_at is None

    closed = await client.request(
        "DELETE",
        "/api/v1/me",
        json={"confirm": "注销"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert closed.status_code == 200, closed.text
    # Sessions end at once: the bearer token, the H5 cookie and the H5 pages.
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    assert (await client.get("/api/v1/me", cookies={"linli_session": cookie})).status_code == 401
    page = await client.get("/h5/me", cookies={"linli_session": cookie})
    assert page.status_code == 302 and page.headers["location"].startswith("/h5/login")

    after = await staff_outputs(client, world)
    for name, text in after.items():
        for personal in (NAME, NICKNAME, PHONE, PHONE[-4:], ADDRESS, "13700002222", "刘书记"):
            assert personal not in text, (name, personal)
    assert privacy_service.ERASED_NAME in after["bookings_soon.xlsx"]
    assert NEIGHBOUR in after["bookings_full.xlsx"]  # the neighbour is still there

    assert await _totals(client, world) == totals

    # The row itself: anonymous, unreachable, with no roles or identities.
    user = await User.get(id=world.person.id)
    assert user.nickname == privacy_service.ERASED_NAME
    assert user.phone_encrypted is None and user.phone_index is None
    assert (user.community_id, user.building_id, user.unit_id, user.unionid) == (None,) * 4
    assert user.erased_at is not None and user.token_version >= 1
    assert not await WechatIdentity.exists(user_id=user.id)
    assert not await RoleGrant.exists(user_id=user.id)
    assert not await SubscriptionConsent.exists(user_id=user.id)
    registration = await PartyRegistration.get(user_id=user.id)
    assert (registration.name, registration.address, registration.party_org_contact) == (
        privacy_service.ERASED_NAME,
        "",
        "",
    )
    assert registration.party_org_phone_encrypted is None and registration.status == "ended"
    assert registration.work_unit == "静安区卫健委"  # the unit's hours still add up
    own = await Wish.get(id=world.own_wish_id)
    assert NAME not in own.description and own.address == ""
    assert own.status == "claimed"  # the neighbour keeps helping, through the community

    # Open matters ended as the person would: the waitlisted neighbour got the seat, the tea
    # class past its deadline keeps the (now anonymous) seat, the claimed wish is back open.
    assert (
        await Booking.get(activity_id=world.class_full.id, user_id=user.id).values_list(
            "status", flat=True
        )
        == "cancelled"
    )
    assert (
        await Booking.get(activity_id=world.class_full.id, user_id=world.neighbour.id).values_list(
            "status", flat=True
        )
        == "confirmed"
    )
    assert (
        await Booking.get(activity_id=world.class_soon.id, user_id=user.id).values_list(
            "status", flat=True
        )
        == "confirmed"
    )
    released = await Wish.get(id=world.claimed_wish_id)
    assert released.status == "open" and released.claimer_id is None
    assert not await OutboxMessage.filter(user_id=user.id, status__in=("pending", "retry")).exists()


async def test_closing_twice_or_after_logout_is_401(client: httpx.AsyncClient):
    world = await build_world()
    token = accounts_service.issue_access_token(user_id=world.person.id)
    headers = {"Authorization": f"Bearer {token}"}
    first = await client.request("DELETE", "/api/v1/me", json={"confirm": "注销"}, headers=headers)
    assert first.status_code == 200
    again = await client.request("DELETE", "/api/v1/me", json={"confirm": "注销"}, headers=headers)
    assert again.status_code == 401


async def test_closing_needs_the_confirmation_field(client: httpx.AsyncClient):
    world = await build_world()
    headers = {
        "Authorization": f"Bearer {accounts_service.issue_access_token(user_id=world.person.id)}"
    }
    missing = await client.request("DELETE", "/api/v1/me", json={}, headers=headers)
    assert missing.status_code == 422
    no_body = await client.delete("/api/v1/me", headers=headers)
    assert no_body.status_code == 422
    assert (await User.get(id=world.person.id)).erased_at is None


async def test_a_new_login_after_closing_is_a_new_account(client: httpx.AsyncClient, fake_wechat):
    fake_wechat.register_code("c-before", "openid-closer", "union-closer")
    first = await client.post("/api/v1/auth/miniprogram/login", json={"code": "c-before"})
    old_id = first.json()["user"]["id"]
    headers = {"Authorization": f"Bearer {first.json()['token']}"}
    closed = await client.request("DELETE", "/api/v1/me", json={"confirm": "注销"}, headers=headers)
    assert closed.status_code == 200

    fake_wechat.register_code("c-after", "openid-closer", "union-closer")
    again = await client.post("/api/v1/auth/miniprogram/login", json={"code": "c-after"})

    assert again.status_code == 200
    assert again.json()["user"]["id"] != old_id
    assert again.json()["user"]["nickname"] == "微信用户"
