"""The wish API over HTTP: shapes from API.md, status codes, and no phone in public answers."""

from __future__ import annotations

import re

import httpx

from backend.wishes.models import Wish
from tests.factories import COMMUNITY_CONTACT, RESIDENT_PHONE, Neighbourhood, auth_headers
from tests.factories.wishes import RESIDENT_PHONE_MASKED

PHONE = re.compile(r"1[3-9]\d{9}")


async def post(client: httpx.AsyncClient, path: str, user, json=None) -> httpx.Response:
    return await client.post(f"/api/v1{path}", json=json, headers=auth_headers(user))


async def create_open_wish(client: httpx.AsyncClient, hood: Neighbourhood, **overrides) -> int:
    body = {
        "community_id": hood.community.id,
        "title": "想请人帮忙修水龙头",
        "description": "厨房水龙头漏水，电话 13812345678，身份证 31010119800101123X。",
        "category": "生活帮扶",
        "needed_by": None,
        "address": "大田社区 5 号楼 302 室",
        **overrides,
    }
    created = await post(client, "/wishes", hood.resident, body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending_review"
    wish_id = created.json()["id"]
    reviewed = await post(client, f"/wishes/{wish_id}/review", hood.staff, {"approve": True})
    assert reviewed.status_code == 200 and reviewed.json()["status"] == "open"
    return wish_id


async def test_the_whole_lifecycle_over_http(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish_id = await create_open_wish(client, hood)

    own = await post(client, f"/wishes/{wish_id}/claim", hood.resident)
    assert own.status_code == 403 and own.json()["error"]["code"] == "own_wish"

    claim = await post(client, f"/wishes/{wish_id}/claim", hood.neighbour)
    assert claim.status_code == 200, claim.text
    body = claim.json()
    assert body["status"] == "claimed"
    # Claiming shares nothing personal: the community's contact and a masked phone.
    assert body["contact"] is None and RESIDENT_PHONE not in claim.text
    assert "302 室" not in claim.text
    assert body["poster_phone_masked"] == RESIDENT_PHONE_MASKED
    assert (body["community_contact"]["name"], body["community_contact"]["phone"]) == (
        COMMUNITY_CONTACT
    )
    assert body["actions"] == ["fulfil", "release"]

    stranger = await post(
        client, f"/wishes/{wish_id}/accept", hood.party_member, {"claimer_id": body["claimer_id"]}
    )
    assert stranger.status_code == 403
    assert stranger.json()["error"]["code"] == "not_poster_or_staff"
    accept = await post(
        client, f"/wishes/{wish_id}/accept", hood.resident, {"claimer_id": body["claimer_id"]}
    )
    assert accept.status_code == 200, accept.text
    assert accept.json()["accepted_at"] is not None and "accept" not in accept.json()["actions"]
    seen = await client.get(f"/api/v1/wishes/{wish_id}", headers=auth_headers(hood.neighbour))
    assert seen.json()["contact"]["phone"] == RESIDENT_PHONE
    assert seen.json()["contact"]["address"] == "大田社区 5 号楼 302 室"

    again = await post(client, f"/wishes/{wish_id}/claim", hood.party_member, {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_claimed"
    assert again.json()["error"]["message"]

    not_mine = await post(client, f"/wishes/{wish_id}/fulfil", hood.party_member, {"note": "好了"})
    assert not_mine.status_code == 403
    fulfil = await post(client, f"/wishes/{wish_id}/fulfil", hood.neighbour, {"note": "修好了"})
    assert fulfil.status_code == 200 and fulfil.json()["status"] == "fulfilled"

    bad = await post(client, f"/wishes/{wish_id}/confirm", hood.resident, {"rating": 9})
    assert bad.status_code == 422 and "rating" in bad.json()["error"]["fields"]
    confirm = await post(
        client, f"/wishes/{wish_id}/confirm", hood.resident, {"rating": 5, "thanks": "谢谢！"}
    )
    assert confirm.status_code == 200 and confirm.json()["status"] == "closed"
    me = await client.get("/api/v1/me", headers=auth_headers(hood.neighbour))
    assert me.json()["points_balance"] == 10

    history = confirm.json()["history"]
    assert [(h["action"], h["to_status"]) for h in history] == [
        ("submitted", "pending_review"),
        ("approved", "open"),
        ("claimed", "claimed"),
        ("contact_shared", "claimed"),
        ("fulfilled", "fulfilled"),
        ("closed", "closed"),
    ]
    assert history[3]["actor"] == "心愿人"


async def test_contract_errors(client: httpx.AsyncClient, hood: Neighbourhood) -> None:
    wish_id = await create_open_wish(client, hood)
    anonymous = await client.post(f"/api/v1/wishes/{wish_id}/claim")
    assert anonymous.status_code == 401
    missing = await post(client, "/wishes/999999/claim", hood.neighbour)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    huge = await post(client, f"/wishes/{2**70}/claim", hood.neighbour)
    assert huge.status_code == 422
    not_json = await client.post(
        f"/api/v1/wishes/{wish_id}/claim",
        content=b"{",
        headers={**auth_headers(hood.neighbour), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    stranger_unit = await post(
        client, f"/wishes/{wish_id}/claim", hood.neighbour, {"unit_id": hood.unit.id}
    )
    assert stranger_unit.status_code == 403
    assert stranger_unit.json()["error"]["code"] == "not_unit_member"
    review = await post(client, f"/wishes/{wish_id}/review", hood.other_staff, {"approve": True})
    assert review.status_code == 403
    twice = await post(client, f"/wishes/{wish_id}/review", hood.staff, {"approve": True})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "not_pending_review"
    elsewhere = await post(
        client,
        "/wishes",
        hood.resident,
        {
            "community_id": hood.other_community.id,
            "title": "标题",
            "description": "心愿内容心愿内容",
            "category": "其他",
        },
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "not_resident"
    bad_status = await client.get("/api/v1/wishes?status=pending_review")
    assert bad_status.status_code == 422


async def test_a_unit_claim_and_the_staff_views(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish_id = await create_open_wish(client, hood)
    claim = await post(
        client, f"/wishes/{wish_id}/claim", hood.unit_member, {"unit_id": hood.unit.id}
    )
    assert claim.status_code == 200 and claim.json()["claimed_by"] == "育才学校"
    listed = (await client.get("/api/v1/wishes")).json()["items"]
    assert listed[0]["claimed_by"] == "育才学校"
    mine = await client.get("/api/v1/me/wish-claims", headers=auth_headers(hood.unit_member))
    assert [w["id"] for w in mine.json()["items"]] == [wish_id]

    staff = await client.get("/api/v1/staff/wishes", headers=auth_headers(hood.staff))
    assert staff.status_code == 200
    flags = staff.json()["items"][0]["flags"]
    assert {f["kind"] for f in flags} == {"phone", "id_number"}
    credits = await client.get(
        "/api/v1/staff/wishes/unit-credits", headers=auth_headers(hood.staff)
    )
    assert credits.json() == [
        {
            "unit_id": hood.unit.id,
            "unit_name": "育才学校",
            "claimed": 1,
            "fulfilled": 0,
            "closed": 0,
        }
    ]
    resident = await client.get("/api/v1/staff/wishes", headers=auth_headers(hood.neighbour))
    assert resident.status_code == 403


async def test_no_public_answer_contains_a_phone_number(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish_id = await create_open_wish(client, hood)
    claimed_id = await create_open_wish(client, hood, title="第二个心愿")
    await post(client, f"/wishes/{claimed_id}/claim", hood.neighbour)
    pending = await post(
        client,
        "/wishes",
        hood.resident,
        {
            "community_id": hood.community.id,
            "title": "待审核 13812345678",
            "description": "待审核的心愿 13812345678",
            "category": "其他",
        },
    )
    pending_id = pending.json()["id"]
    public_reads = [
        ("/api/v1/wishes", None),
        ("/api/v1/wishes?status=open", None),
        (f"/api/v1/wishes?community_id={hood.community.id}", None),
        (f"/api/v1/wishes/{wish_id}", None),
        (f"/api/v1/wishes/{claimed_id}", None),
        (f"/api/v1/wishes/{pending_id}", None),
        (f"/api/v1/wishes/{wish_id}", hood.party_member),
        (f"/api/v1/wishes/{claimed_id}", hood.party_member),
        (f"/api/v1/wishes/{pending_id}", hood.party_member),
        ("/api/v1/me/wish-claims", hood.party_member),
    ]
    for path, user in public_reads:
        response = await client.get(path, headers=auth_headers(user) if user else {})
        assert response.status_code in (200, 404), path
        assert not PHONE.search(response.text), (path, response.text)
    # Errors do not echo personal data either.
    refused = await post(client, f"/wishes/{claimed_id}/claim", hood.party_member)
    assert refused.status_code == 409 and not PHONE.search(refused.text)
    # Nor does the claimer's own view before the poster accepts them.
    claimer_view = await client.get(
        f"/api/v1/wishes/{claimed_id}", headers=auth_headers(hood.neighbour)
    )
    assert RESIDENT_PHONE not in claimer_view.text and "302 室" not in claimer_view.text
    # The check is not vacuous: the accepted claimer and staff do see the number.
    claimer_id = claimer_view.json()["claimer_id"]
    await post(client, f"/wishes/{claimed_id}/accept", hood.staff, {"claimer_id": claimer_id})
    for user in (hood.neighbour, hood.staff):
        seen = await client.get(f"/api/v1/wishes/{claimed_id}", headers=auth_headers(user))
        assert RESIDENT_PHONE in seen.text
    assert await Wish.filter(description__contains="13812345678").count() == 3


async def test_a_retried_claim_with_the_same_key_replays(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish_id = await create_open_wish(client, hood)
    headers = {**auth_headers(hood.neighbour), "Idempotency-Key": "claim-1"}
    first = await client.post(f"/api/v1/wishes/{wish_id}/claim", headers=headers)
    second = await client.post(f"/api/v1/wishes/{wish_id}/claim", headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json()["status"] == "claimed"


async def test_the_openapi_document_describes_the_wish_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    claim = paths["/api/v1/wishes/{wish_id}/claim"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(claim["responses"])
    for path in (
        "/api/v1/wishes",
        "/api/v1/wishes/{wish_id}",
        "/api/v1/wishes/{wish_id}/review",
        "/api/v1/wishes/{wish_id}/release",
        "/api/v1/wishes/{wish_id}/fulfil",
        "/api/v1/wishes/{wish_id}/confirm",
        "/api/v1/board/items",
        "/api/v1/board/items/{item_id}/claims",
        "/api/v1/board/matching",
        "/api/v1/staff/wishes/export.xlsx",
    ):
        assert path in paths, path


async def test_a_claimer_fulfils_with_a_photo(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish_id = await create_open_wish(client, hood)
    await post(client, f"/wishes/{wish_id}/claim", hood.neighbour)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    path = f"/api/v1/wishes/{wish_id}/fulfil-with-photo"
    not_an_image = await client.post(
        path,
        data={"note": "修好了"},
        files={"photo": ("x.png", b"<svg/>", "image/png")},
        headers=auth_headers(hood.neighbour),
    )
    assert not_an_image.status_code == 422 and "photo" in not_an_image.json()["error"]["fields"]
    done = await client.post(
        path,
        data={"note": "修好了"},
        files={"photo": ("x.png", png, "image/png")},
        headers=auth_headers(hood.neighbour),
    )
    assert done.status_code == 200 and done.json()["has_photo"] is True
    photo = await client.get(f"/api/v1/wishes/{wish_id}/photo", headers=auth_headers(hood.resident))
    assert photo.content == png and photo.headers["content-type"] == "image/png"
    stranger = await client.get(
        f"/api/v1/wishes/{wish_id}/photo", headers=auth_headers(hood.party_member)
    )
    assert stranger.status_code == 404
