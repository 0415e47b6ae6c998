"""Contacts on a need-to-know basis, and the caps against churn and flooding.

A claimer sees the community's contact and the poster's masked phone; the poster's own
contact only after the poster (or staff for them) accepts that claimer, never when the
poster chose 由社区联系. Releasing clears the acceptance. After a release a person waits
before claiming again, and claims, wishes and board items per person per day are capped.
Text with control characters is refused naming the field, on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.core import quota
from backend.core.clock import clock
from backend.core.config import reset_settings
from backend.core.errors import Invalid
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.wishes import board, contacts, lists, service
from backend.wishes import exceptions as exc
from backend.wishes.models import BoardItem, Wish, WishEvent
from backend.wishes.schemas import BoardClaimOut, WishDetailOut
from tests.factories import (
    COMMUNITY_CONTACT,
    RESIDENT_PHONE,
    Neighbourhood,
    auth_headers,
    make_staff,
    make_user,
)
from tests.factories.wishes import RESIDENT_PHONE_MASKED, open_wish, post_wish, publish_item

# 10:00 in Shanghai: a whole local day ahead for the daily caps.
MORNING = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TEXT_PHONE = "13812345678"


@pytest.fixture
def tight_caps(monkeypatch: pytest.MonkeyPatch):
    """Small caps, to reach each of them in a few steps."""
    caps = {
        "LINLI_WISH_CLAIMS_PER_DAY": "2",
        "LINLI_WISHES_PER_DAY": "3",
        "LINLI_BOARD_ITEMS_PER_DAY": "2",
        "LINLI_WISH_CLAIM_COOLDOWN_MINUTES": "30",
    }
    for key, value in caps.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield caps
    reset_settings()


async def claimed_wish(hood: Neighbourhood, **kwargs):
    wish = await open_wish(hood, **kwargs)
    return await service.claim_wish(user=hood.neighbour, wish_id=wish.id)


# --- accepting a claimer shares the contact ---


async def test_a_claimer_sees_the_community_and_a_masked_phone_until_accepted(
    hood: Neighbourhood,
) -> None:
    claimed = await claimed_wish(
        hood, description=f"周五陪我复诊，可打 {TEXT_PHONE} 找我。", address="5 号楼 302 室"
    )
    assert claimed.contact is None
    assert claimed.poster_phone_masked == RESIDENT_PHONE_MASKED
    assert claimed.community_contact is not None
    assert (claimed.community_contact.name, claimed.community_contact.phone) == COMMUNITY_CONTACT
    # A number the poster typed into the text is masked for the claimer too.
    assert TEXT_PHONE not in claimed.description
    assert (
        TEXT_PHONE
        not in (await lists.list_my_claims(user=hood.neighbour, page=PageRequest()))
        .items[0]
        .description
    )
    assert claimed.actions == ["fulfil", "release"]
    assert claimed.history is None

    as_poster = await contacts.get_wish(viewer=hood.resident, wish_id=claimed.id)
    assert as_poster.actions == ["accept"] and as_poster.claimer_id == hood.neighbour.id
    accepted = await contacts.accept_wish(
        actor=hood.resident, wish_id=claimed.id, claimer_id=hood.neighbour.id
    )
    assert accepted.accepted_at is not None and accepted.actions == []

    seen = await contacts.get_wish(viewer=hood.neighbour, wish_id=claimed.id)
    assert seen.contact is not None
    assert (seen.contact.name, seen.contact.phone, seen.contact.address) == (
        "王阿姨",
        RESIDENT_PHONE,
        "5 号楼 302 室",
    )
    assert TEXT_PHONE in seen.description
    # The reveal is one history row, shown to the poster and staff; the claimer is told.
    for viewer in (hood.resident, hood.staff):
        history = (await contacts.get_wish(viewer=viewer, wish_id=claimed.id)).history
        shared = [e for e in history if e.action == "contact_shared"]
        assert len(shared) == 1 and shared[0].actor == "心愿人" and "李**" in shared[0].note
    last = (await OutboxMessage.filter(user_id=hood.neighbour.id).order_by("-id").first()).context
    assert last["status"] == "accepted" and RESIDENT_PHONE not in str(last)


async def test_only_the_poster_or_staff_accept_and_only_the_current_claimer(
    hood: Neighbourhood,
) -> None:
    claimed = await claimed_wish(hood)
    for outsider in (hood.neighbour, hood.party_member, hood.other_staff):
        with pytest.raises(exc.NotPosterOrStaff):
            await contacts.accept_wish(
                actor=outsider, wish_id=claimed.id, claimer_id=hood.neighbour.id
            )
    with pytest.raises(exc.ClaimerChanged):
        await contacts.accept_wish(
            actor=hood.resident, wish_id=claimed.id, claimer_id=hood.party_member.id
        )
    with pytest.raises(Invalid) as caught:
        await contacts.accept_wish(actor=hood.resident, wish_id=claimed.id, claimer_id=2**63)
    assert "claimer_id" in caught.value.fields
    assert (await Wish.get(id=claimed.id)).accepted_at is None

    open_one = await open_wish(hood, title="还没人认领的心愿")
    with pytest.raises(exc.NotClaimed):
        await contacts.accept_wish(
            actor=hood.resident, wish_id=open_one.id, claimer_id=hood.neighbour.id
        )

    # Staff accept on the poster's behalf, and a second acceptance changes nothing.
    by_staff = await contacts.accept_wish(
        actor=hood.staff, wish_id=claimed.id, claimer_id=hood.neighbour.id
    )
    first_at = by_staff.accepted_at
    again = await contacts.accept_wish(
        actor=hood.resident, wish_id=claimed.id, claimer_id=hood.neighbour.id
    )
    assert again.accepted_at == first_at
    events = await WishEvent.filter(wish_id=claimed.id, action="contact_shared")
    assert len(events) == 1 and events[0].actor_role == "staff"
    assert "社区工作人员代心愿人" in events[0].note


async def test_a_release_clears_the_acceptance_so_the_next_claimer_starts_masked(
    hood: Neighbourhood,
) -> None:
    claimed = await claimed_wish(hood)
    await contacts.accept_wish(
        actor=hood.resident, wish_id=claimed.id, claimer_id=hood.neighbour.id
    )
    released = await service.release_wish(user=hood.neighbour, wish_id=claimed.id)
    assert released.contact is None and released.accepted_at is None
    assert (await Wish.get(id=claimed.id)).accepted_at is None

    second = await service.claim_wish(user=hood.party_member, wish_id=claimed.id)
    assert second.contact is None and second.poster_phone_masked == RESIDENT_PHONE_MASKED
    # The one who released sees nothing any more.
    gone = await contacts.get_wish(viewer=hood.neighbour, wish_id=claimed.id)
    assert gone.contact is None and gone.poster_phone_masked is None


async def test_an_overdue_release_and_a_removal_clear_the_acceptance(hood: Neighbourhood) -> None:
    clock.set(MORNING)
    claimed = await claimed_wish(hood)
    await contacts.accept_wish(
        actor=hood.resident, wish_id=claimed.id, claimer_id=hood.neighbour.id
    )
    clock.advance(timedelta(days=8))
    assert await service.release_overdue_claims() == 1
    wish = await Wish.get(id=claimed.id)
    assert wish.status == "open" and wish.accepted_at is None

    await service.claim_wish(user=hood.party_member, wish_id=claimed.id)
    await contacts.accept_wish(
        actor=hood.resident, wish_id=claimed.id, claimer_id=hood.party_member.id
    )
    await service.remove_wish(actor=hood.staff, wish_id=claimed.id, reason="内容不当")
    assert (await Wish.get(id=claimed.id)).accepted_at is None


async def test_contact_via_the_community_never_reveals_the_poster(hood: Neighbourhood) -> None:
    wish = await open_wish(
        hood, contact_via="community", description=f"请联系我 {TEXT_PHONE}，谢谢。"
    )
    assert wish.contact_via == "community"
    claimed = await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    accepted = await contacts.accept_wish(
        actor=hood.resident, wish_id=wish.id, claimer_id=hood.neighbour.id
    )
    assert accepted.accepted_at is not None
    seen = await contacts.get_wish(viewer=hood.neighbour, wish_id=wish.id)
    for view in (claimed, seen):
        assert view.contact is None
        assert TEXT_PHONE not in view.description
        assert RESIDENT_PHONE not in WishDetailOut.of(view).model_dump_json()
        assert view.community_contact is not None
    history = (await contacts.get_wish(viewer=hood.resident, wish_id=wish.id)).history
    assert [e.action for e in history][-1] == "accepted"
    assert not await WishEvent.filter(wish_id=wish.id, action="contact_shared").exists()
    # Staff still see the contact, as before.
    staff_view = await contacts.get_wish(viewer=hood.staff, wish_id=wish.id)
    assert staff_view.contact is not None and staff_view.contact.phone == RESIDENT_PHONE

    with pytest.raises(Invalid) as caught:
        await post_wish(hood, contact_via="phone")
    assert "contact_via" in caught.value.fields


# --- churn and daily caps ---


async def test_a_release_is_followed_by_a_cooldown(hood: Neighbourhood, tight_caps) -> None:
    clock.set(MORNING)
    first, second = await open_wish(hood, title="心愿一"), await open_wish(hood, title="心愿二")
    await service.claim_wish(user=hood.neighbour, wish_id=first.id)
    await service.release_wish(user=hood.neighbour, wish_id=first.id)
    clock.advance(timedelta(minutes=29))
    with pytest.raises(exc.ClaimCooldown) as caught:
        await service.claim_wish(user=hood.neighbour, wish_id=second.id)
    # 10:00 + 30 minutes, local time.
    assert "10:30 后" in caught.value.message and caught.value.status_code == 429
    assert caught.value.headers == {"Retry-After": "61"}
    assert (await Wish.get(id=second.id)).status == "open"
    # Others are not held up, and the wait ends.
    await service.claim_wish(user=hood.party_member, wish_id=first.id)
    clock.advance(timedelta(minutes=1))
    assert (await service.claim_wish(user=hood.neighbour, wish_id=second.id)).status == "claimed"


async def test_an_overdue_release_also_starts_the_cooldown(hood: Neighbourhood, tight_caps) -> None:
    clock.set(MORNING)
    first, second = await open_wish(hood, title="心愿一"), await open_wish(hood, title="心愿二")
    await service.claim_wish(user=hood.neighbour, wish_id=first.id)
    clock.advance(timedelta(days=7, minutes=1))
    assert await service.release_overdue_claims() == 1
    with pytest.raises(exc.ClaimCooldown):
        await service.claim_wish(user=hood.neighbour, wish_id=second.id)


async def test_claims_per_day_are_capped(
    hood: Neighbourhood, tight_caps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINLI_WISHES_PER_DAY", "10")
    reset_settings()
    clock.set(MORNING)
    wishes = [await open_wish(hood, title=f"心愿{i}") for i in range(3)]
    taken = await claimed_wish(hood, title="被别人先认领的")
    # A lost race counts nothing.
    with pytest.raises(exc.AlreadyClaimed):
        await service.claim_wish(user=hood.party_member, wish_id=taken.id)
    await service.claim_wish(user=hood.party_member, wish_id=wishes[0].id)
    await service.fulfil_wish(user=hood.party_member, wish_id=wishes[0].id, note="完成了")
    await service.claim_wish(user=hood.party_member, wish_id=wishes[1].id)
    with pytest.raises(exc.ClaimsPerDayReached) as caught:
        await service.claim_wish(user=hood.party_member, wish_id=wishes[2].id)
    assert "今天已认领 2 个心愿" in caught.value.message and "明天" in caught.value.message
    assert caught.value.status_code == 429
    # 10:00 to midnight local time: 14 hours.
    assert caught.value.headers == {"Retry-After": str(14 * 3600 + 1)}
    assert (await Wish.get(id=wishes[2].id)).status == "open"
    assert await quota.used(f"wish-claim:{hood.party_member.id}", bucket="2026-03-02") == 2
    clock.advance(timedelta(hours=14))
    assert (await service.claim_wish(user=hood.party_member, wish_id=wishes[2].id)).status == (
        "claimed"
    )


async def test_wishes_per_day_are_capped(hood: Neighbourhood, tight_caps) -> None:
    clock.set(MORNING)
    for i in range(3):
        await post_wish(hood, title=f"心愿{i}")
    with pytest.raises(exc.WishesPerDayReached) as caught:
        await post_wish(hood, title="第四个心愿")
    assert "今天已发布 3 个心愿" in caught.value.message and caught.value.status_code == 429
    assert await Wish.filter(poster_id=hood.resident.id).count() == 3
    assert not await Wish.filter(title="第四个心愿").exists()
    # Refused input is not counted against the day.
    clock.advance(timedelta(days=1))
    with pytest.raises(Invalid):
        await post_wish(hood, title="x")
    await post_wish(hood, title="第二天的心愿")
    assert await Wish.filter(poster_id=hood.resident.id).count() == 4


async def test_board_items_per_day_are_capped(hood: Neighbourhood, tight_caps) -> None:
    clock.set(MORNING)

    async def publish(title: str):
        return await publish_item(
            actor=hood.staff,
            kind="need",
            community_id=hood.community.id,
            title=title,
            description="每周二上午陪伴独居老人聊天。",
            category="助老服务",
            quantity=1,
        )

    await publish("需求一")
    await publish("需求二")
    with pytest.raises(exc.BoardItemsPerDayReached) as caught:
        await publish("需求三")
    assert "今天已发布 2 项" in caught.value.message and caught.value.status_code == 429
    assert await BoardItem.filter(created_by_id=hood.staff.id).count() == 2
    clock.advance(timedelta(days=1))
    await publish("需求三")
    assert await BoardItem.filter(created_by_id=hood.staff.id).count() == 3


# --- the two-way board: the other side masked until the publisher confirms ---


async def test_board_contacts_are_masked_until_the_publisher_confirms(hood: Neighbourhood) -> None:
    publisher = await make_staff(hood.community, nickname="陈社工", phone="13300004444")
    claimant = await make_user(nickname="赵老师", unit=hood.unit, phone="13500005555")
    need = await publish_item(
        actor=publisher,
        kind="need",
        community_id=hood.community.id,
        title="助老陪护",
        description="每周二上午陪伴独居老人聊天。",
        category="助老服务",
        quantity=2,
    )
    claim = await board.claim_item(actor=claimant, item_id=need.id, unit_id=hood.unit.id)
    assert claim.claimant_contact is None  # their own side
    assert claim.publisher_contact is not None
    assert (claim.publisher_contact.name, claim.publisher_contact.phone) == ("陈**", "133****4444")
    assert not claim.publisher_contact.shared
    as_publisher = (await board.get_item(viewer=publisher, item_id=need.id)).claims[0]
    assert as_publisher.claimant_contact is not None
    assert as_publisher.claimant_contact.phone == "135****5555"
    # The public and outsiders see organisations only.
    for outsider in (None, hood.neighbour, hood.other_staff):
        seen = (await board.get_item(viewer=outsider, item_id=need.id)).claims[0]
        assert seen.publisher_contact is None and seen.claimant_contact is None
        assert "13300004444" not in BoardClaimOut.of(seen).model_dump_json()

    confirmed = await board.confirm_claim(actor=publisher, claim_id=claim.id)
    assert confirmed.claimant_contact is not None
    assert confirmed.claimant_contact.phone == "13500005555" and confirmed.claimant_contact.shared
    mine = (await board.list_claims_for(actor=claimant, page=PageRequest())).items[0]
    assert mine.publisher_contact is not None
    assert (mine.publisher_contact.name, mine.publisher_contact.phone) == ("陈社工", "13300004444")

    cancelled = await board.cancel_claim(actor=claimant, claim_id=claim.id)
    assert cancelled.publisher_contact is not None and not cancelled.publisher_contact.shared


# --- text: one check, on both databases ---


@pytest.mark.parametrize("field", ["title", "description", "address"])
async def test_a_nul_byte_in_a_wish_is_refused_naming_the_field(
    hood: Neighbourhood, field: str
) -> None:
    values = {"title": "想请人陪我复诊", "description": "周五去医院，需要陪同。", "address": ""}
    values[field] = values[field][:2] + "\x00" + values[field][2:]
    with pytest.raises(Invalid) as caught:
        await post_wish(hood, **values)
    assert list(caught.value.fields) == [field]
    assert await Wish.all().count() == 0


async def test_control_characters_are_refused_over_http(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    headers = auth_headers(hood.resident)
    body = {
        "community_id": hood.community.id,
        "title": "想请人\x00陪我复诊",
        "description": "周五去医院，需要陪同。",
        "category": "助老助残",
    }
    refused = await client.post("/api/v1/wishes", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid"
    assert list(refused.json()["error"]["fields"]) == ["title"]
    body = {**body, "title": "想请人陪我复诊", "description": "周五\x00去医院"}
    refused = await client.post("/api/v1/wishes", json=body, headers=headers)
    assert refused.status_code == 422 and "description" in refused.json()["error"]["fields"]
    assert await Wish.all().count() == 0
    # A multi-line description keeps its lines.
    body = {**body, "description": "周五去医院。\n需要陪同。"}
    made = await client.post("/api/v1/wishes", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["description"] == "周五去医院。\n需要陪同。"

    staff = auth_headers(hood.staff)
    item = {
        "kind": "need",
        "community_id": hood.community.id,
        "title": "助老陪护",
        "description": "每周二\x07上午陪伴老人。",
        "category": "助老服务",
        "quantity": 1,
    }
    refused = await client.post("/api/v1/board/items", json=item, headers=staff)
    assert refused.status_code == 422 and "description" in refused.json()["error"]["fields"]
    assert await BoardItem.all().count() == 0


# --- over HTTP: the codes, the messages and the contract ---


async def test_caps_and_acceptance_over_http(
    client: httpx.AsyncClient, hood: Neighbourhood, tight_caps
) -> None:
    clock.set(MORNING)
    wishes = [await open_wish(hood, title=f"心愿{i}") for i in range(2)]
    headers = auth_headers(hood.neighbour)
    claim = await client.post(f"/api/v1/wishes/{wishes[0].id}/claim", headers=headers)
    assert claim.status_code == 200 and RESIDENT_PHONE not in claim.text
    assert claim.json()["community_contact"]["phone"] == COMMUNITY_CONTACT[1]
    await client.post(f"/api/v1/wishes/{wishes[0].id}/release", headers=headers)
    cooling = await client.post(f"/api/v1/wishes/{wishes[1].id}/claim", headers=headers)
    assert cooling.status_code == 429
    assert cooling.json()["error"]["code"] == "claim_cooldown"
    assert "10:30" in cooling.json()["error"]["message"]
    assert int(cooling.headers["Retry-After"]) == 1801

    poster = auth_headers(hood.resident)
    four = [
        await client.post(
            "/api/v1/wishes",
            json={
                "community_id": hood.community.id,
                "title": f"新心愿{i}",
                "description": "需要一点帮助。",
                "category": "其他",
            },
            headers=poster,
        )
        for i in range(2)
    ]
    # open_wish already posted two today: the cap of three is reached by the second one here.
    assert [r.status_code for r in four] == [201, 429]
    assert four[1].json()["error"]["code"] == "wishes_per_day_reached"
    assert "明天" in four[1].json()["error"]["message"]

    bad = await client.post(
        f"/api/v1/wishes/{wishes[1].id}/accept", json={"claimer_id": "1"}, headers=poster
    )
    assert bad.status_code == 422 and "claimer_id" in bad.json()["error"]["fields"]
    not_claimed = await client.post(
        f"/api/v1/wishes/{wishes[1].id}/accept",
        json={"claimer_id": hood.neighbour.id},
        headers=poster,
    )
    assert not_claimed.status_code == 409 and not_claimed.json()["error"]["code"] == "not_claimed"


async def test_the_openapi_document_names_the_new_codes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def described(path: str, status: str) -> str:
        return paths[path]["post"]["responses"][status]["description"]

    claim = "/api/v1/wishes/{wish_id}/claim"
    assert "claim_cooldown" in described(claim, "429")
    assert "claims_per_day_reached" in described(claim, "429")
    assert "claim_limit_reached" in described(claim, "409")
    assert "wishes_per_day_reached" in described("/api/v1/wishes", "429")
    assert "board_items_per_day_reached" in described("/api/v1/board/items", "429")
    accept = "/api/v1/wishes/{wish_id}/accept"
    assert "not_poster_or_staff" in described(accept, "403")
    assert "claimer_changed" in described(accept, "409") and "not_claimed" in described(
        accept, "409"
    )
    schema = paths[accept]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/AcceptIn")
