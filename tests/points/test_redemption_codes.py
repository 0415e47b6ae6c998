"""Pickup codes are the holder's alone: staff lists, pages, answers and the export never
show them; staff verify (核销) by the code the resident shows. And a staff lookup by a
phone number that several residents share says so instead of picking one of them."""

from __future__ import annotations

import io
from dataclasses import dataclass

import httpx
import pytest
from openpyxl import load_workbook

from backend.accounts.models import User
from backend.core.clock import clock
from backend.orgs.models import Community
from backend.points import adjustments, ledger, rewards
from backend.points.exceptions import PhoneAmbiguous
from backend.points.models import PointsLedgerEntry, Redemption, Reward
from tests.factories import (
    auth_headers,
    local,
    make_community,
    make_staff,
    make_user,
    session_cookies,
)
from tests.factories.points import make_reward
from tests.h5.conftest import csrf_token

SHARED_PHONE = "13800000001"


@dataclass
class Desk:
    community: Community
    staff: User
    resident: User
    bag: Reward
    redemption: Redemption


@pytest.fixture
async def desk(db) -> Desk:
    clock.set(local(2026, 4, 20, 10, 0))
    community = await make_community(name="大田社区")
    staff = await make_staff(community, nickname="陈社工")
    resident = await make_user(nickname="王阿姨", community=community, phone=SHARED_PHONE)
    await ledger.award(
        user_id=resident.id, amount=120, source_type="activity", source_id="a1", reason="参加读书会"
    )
    bag = await make_reward(
        actor=staff, community_id=community.id, title="环保购物袋", cost=50, stock=3
    )
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)
    return Desk(community, staff, resident, bag, redemption)


def _as(client: httpx.AsyncClient, user: User) -> httpx.AsyncClient:
    client.cookies.clear()
    client.cookies.update(session_cookies(user))
    return client


# --- the API ---


async def test_only_the_holder_gets_the_code_from_the_api(client, desk):
    code = desk.redemption.pickup_code
    mine = await client.get("/api/v1/me/redemptions", headers=auth_headers(desk.resident))
    assert mine.json()["items"][0]["pickup_code"] == code
    own = await client.get(
        f"/api/v1/redemptions/{desk.redemption.id}", headers=auth_headers(desk.resident)
    )
    assert own.json()["pickup_code"] == code and code in own.json()["pickup_url"]

    staff_h = auth_headers(desk.staff)
    listing = await client.get(
        "/api/v1/redemptions", params={"community_id": desk.community.id}, headers=staff_h
    )
    assert listing.status_code == 200
    [item] = listing.json()["items"]
    assert item["id"] == desk.redemption.id and item["status"] == "pending_pickup"
    assert "pickup_code" not in item and "pickup_url" not in item
    assert code not in listing.text
    detail = await client.get(f"/api/v1/redemptions/{desk.redemption.id}", headers=staff_h)
    assert detail.json()["reward_title"] == "环保购物袋" and code not in detail.text
    # The code the resident shows travels in the body, out of addresses and access logs.
    looked_up = await client.post(
        "/api/v1/redemptions/lookup", json={"pickup_code": code}, headers=staff_h
    )
    assert looked_up.json()["id"] == desk.redemption.id
    assert "pickup_code" not in looked_up.json()
    # A code never travels in an address, where access logs would keep it.
    assert not any(
        "{pickup_code}" in path for path in (await client.get("/openapi.json")).json()["paths"]
    )

    # 核销 by the code the resident shows still works, once.
    verified = await client.post(
        "/api/v1/redemptions/verify", json={"pickup_code": code}, headers=staff_h
    )
    assert verified.status_code == 200 and verified.json()["status"] == "fulfilled"
    assert code not in verified.text
    assert (await Redemption.get(id=desk.redemption.id)).fulfilled_by_id == desk.staff.id


async def test_staff_responses_to_cancel_and_the_export_carry_no_code(client, desk):
    code = desk.redemption.pickup_code
    staff_h = auth_headers(desk.staff)
    cancelled = await client.post(
        f"/api/v1/redemptions/{desk.redemption.id}/cancel",
        json={"reason": "礼品缺货"},
        headers=staff_h,
    )
    assert cancelled.json()["status"] == "cancelled" and code not in cancelled.text
    assert (await User.get(id=desk.resident.id)).points_balance == 120

    export = await client.get(
        "/api/v1/points/export",
        params={
            "community_id": desk.community.id,
            "start_date": "2026-04-01",
            "end_date": "2026-04-30",
        },
        headers=staff_h,
    )
    assert export.status_code == 200
    workbook = load_workbook(io.BytesIO(export.content))
    cells = [
        str(value)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows(values_only=True)
        for value in row
        if value is not None
    ]
    assert any("环保购物袋" in cell for cell in cells)  # the spend and its refund are there
    assert not any(code in cell for cell in cells)


async def test_openapi_separates_the_holder_and_staff_views(client, db):
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "pickup_code" in schemas["RedemptionOut"]["properties"]
    assert "pickup_code" not in schemas["StaffRedemptionOut"]["properties"]
    staff_list = spec["paths"]["/api/v1/redemptions"]["get"]["responses"]["200"]
    assert "StaffRedemptionOut" in str(staff_list)


# --- the H5 pages ---


async def test_staff_pages_show_no_code_and_verify_by_the_code_typed(client, desk):
    code = desk.redemption.pickup_code
    _as(client, desk.staff)
    listing = await client.get(
        "/h5/points/staff/redemptions", params={"community_id": desk.community.id}
    )
    assert "环保购物袋" in listing.text and "王**" in listing.text
    assert code not in listing.text
    detail = await client.get(f"/h5/points/staff/redemptions/{desk.redemption.id}")
    assert detail.status_code == 200 and "环保购物袋" in detail.text
    assert code not in detail.text and "确认核销" not in detail.text
    assert "请居民出示领取码" in detail.text
    holder_page = await client.get(f"/h5/points/redemptions/{desk.redemption.id}")
    assert holder_page.status_code == 200 and code not in holder_page.text

    typed = await client.get("/h5/points/staff/verify", params={"code": code[:4] + " " + code[4:]})
    assert "确认核销" in typed.text
    done = await client.post(
        "/h5/points/staff/verify",
        data={"csrf_token": csrf_token(typed.text), "pickup_code": code},
    )
    assert done.status_code == 200 and "核销成功" in done.text and code not in done.text
    assert (await Redemption.get(id=desk.redemption.id)).status == "fulfilled"


async def test_the_holder_still_sees_the_code_and_its_qr(client, desk):
    code = desk.redemption.pickup_code
    _as(client, desk.resident)
    page = await client.get(f"/h5/points/redemptions/{desk.redemption.id}")
    assert code in page.text and "<svg" in page.text
    assert code in (await client.get("/h5/points/redemptions")).text
    # A resident is no staff member: the staff page of a redemption is refused.
    staff_page = await client.get(f"/h5/points/staff/redemptions/{desk.redemption.id}")
    assert staff_page.status_code == 403 and code not in staff_page.text


# --- a phone number several residents share ---


async def test_a_shared_phone_is_refused_as_ambiguous_with_masked_candidates(desk):
    spouse = await make_user(nickname="李伯伯", community=desk.community, phone=SHARED_PHONE)
    with pytest.raises(PhoneAmbiguous) as caught:
        await adjustments.find_resident(actor=desk.staff, query="138 0000 0001")
    assert caught.value.code == "phone_ambiguous" and caught.value.status_code == 409
    message = caught.value.message
    assert f"编号 {desk.resident.id}（王**）" in message and f"编号 {spouse.id}（李**）" in message
    assert "王阿姨" not in message and SHARED_PHONE not in message
    # Choosing by resident number works.
    assert (await adjustments.find_resident(actor=desk.staff, query=str(spouse.id))).id == spouse.id


async def test_a_phone_shared_with_someone_elsewhere_finds_the_staff_members_own(desk):
    await make_user(nickname="赵先生", community=await make_community(), phone=SHARED_PHONE)
    found = await adjustments.find_resident(actor=desk.staff, query=SHARED_PHONE)
    assert found.id == desk.resident.id


async def test_the_api_lookup_answers_409_phone_ambiguous_or_the_one_resident(client, desk):
    staff_h = auth_headers(desk.staff)
    unique = await client.post(
        "/api/v1/points/residents/lookup", json={"query": SHARED_PHONE}, headers=staff_h
    )
    assert unique.json() == {
        "user_id": desk.resident.id,
        "name": "王**",
        "community_id": desk.community.id,
    }
    spouse = await make_user(nickname="李伯伯", community=desk.community, phone=SHARED_PHONE)
    ambiguous = await client.post(
        "/api/v1/points/residents/lookup", json={"query": SHARED_PHONE}, headers=staff_h
    )
    assert ambiguous.status_code == 409
    assert ambiguous.json()["error"]["code"] == "phone_ambiguous"
    assert f"编号 {spouse.id}（李**）" in ambiguous.json()["error"]["message"]
    resident_h = auth_headers(desk.resident)
    refused = await client.post(
        "/api/v1/points/residents/lookup", json={"query": SHARED_PHONE}, headers=resident_h
    )
    assert refused.status_code == 403

    spec = (await client.get("/openapi.json")).json()
    lookup = spec["paths"]["/api/v1/points/residents/lookup"]["post"]["responses"]
    assert "phone_ambiguous" in lookup["409"]["description"]


async def test_the_h5_adjustment_by_a_shared_phone_changes_nothing(client, desk):
    spouse = await make_user(nickname="李伯伯", community=desk.community, phone=SHARED_PHONE)
    _as(client, desk.staff)
    page = await client.get("/h5/points/staff/adjust", params={"community_id": desk.community.id})
    fields = {
        "csrf_token": csrf_token(page.text),
        "community_id": str(desk.community.id),
        "delta": "15",
        "reason": "线下志愿服务补录",
    }
    refused = await client.post("/h5/points/staff/adjust", data=fields | {"who": SHARED_PHONE})
    assert refused.status_code == 409
    assert "这个手机号登记了多位居民" in refused.text and f"编号 {spouse.id}" in refused.text
    assert not await PointsLedgerEntry.exists(source_type="adjustment")

    chosen = await client.post("/h5/points/staff/adjust", data=fields | {"who": str(spouse.id)})
    assert chosen.status_code == 303
    assert (await User.get(id=spouse.id)).points_balance == 15
    assert (await User.get(id=desk.resident.id)).points_balance == 70
