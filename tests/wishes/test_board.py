"""The two-way board: needs and resources, claims held like seats, both sides confirm."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.wishes import board
from backend.wishes import exceptions as exc
from backend.wishes.models import BoardClaim, BoardEvent, BoardItem
from tests.factories import Neighbourhood, auth_headers, make_staff, make_unit, make_user
from tests.factories.wishes import publish_item, publish_need, publish_resource


async def test_who_publishes_what(hood: Neighbourhood) -> None:
    need = await publish_need(hood)
    assert need.kind == "need" and need.publisher_name == "大田社区"
    assert need.remaining == 2 and need.actions == ["close"]
    resource = await publish_resource(hood)
    assert resource.publisher_name == "育才学校" and resource.community_id == hood.community.id

    with pytest.raises(Forbidden):
        await publish_item(
            actor=hood.other_staff,
            kind="need",
            community_id=hood.community.id,
            title="楼道清洁",
            description="清理楼道堆物",
            category="环境整治",
            quantity=1,
        )
    with pytest.raises(exc.NotUnitMember):
        await publish_item(
            actor=hood.staff,
            kind="resource",
            unit_id=hood.unit.id,
            title="法律咨询",
            description="律师坐堂咨询",
            category="法律咨询",
            quantity=1,
        )
    with pytest.raises(Invalid):
        await publish_item(
            actor=hood.staff,
            kind="need",
            community_id=hood.community.id,
            title="讲座",
            description="健康讲座一场",
            category="健康医疗",
            quantity=0,
        )


async def test_a_unit_claims_a_need_and_both_sides_see_it_through(hood: Neighbourhood) -> None:
    need = await publish_need(hood)
    with pytest.raises(exc.NotUnitMember):
        await board.claim_item(actor=hood.neighbour, item_id=need.id, unit_id=hood.unit.id)
    with pytest.raises(Invalid):
        await board.claim_item(
            actor=hood.unit_member, item_id=need.id, community_id=hood.community.id
        )
    claim = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    assert claim.status == "pending" and claim.claimant_name == "育才学校"
    assert claim.actions == ["cancel"]
    with pytest.raises(exc.BoardAlreadyClaimed):
        await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)

    # Only the publisher confirms.
    with pytest.raises(exc.NotBoardSide):
        await board.confirm_claim(actor=hood.unit_member, claim_id=claim.id)
    with pytest.raises(exc.NotBoardSide):
        await board.confirm_claim(actor=hood.other_staff, claim_id=claim.id)
    confirmed = await board.confirm_claim(actor=hood.staff, claim_id=claim.id)
    assert confirmed.status == "confirmed"
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.confirm_claim(actor=hood.staff, claim_id=claim.id)

    noted = await board.record_progress(
        actor=hood.unit_member, claim_id=claim.id, note="已安排 3 名老师，本周二开始"
    )
    assert noted.progress_note == "已安排 3 名老师，本周二开始"
    with pytest.raises(exc.NotBoardSide):
        await board.record_progress(actor=hood.neighbour, claim_id=claim.id, note="路过看看")

    half = await board.mark_done(actor=hood.staff, claim_id=claim.id)
    assert half.status == "confirmed" and half.publisher_done and not half.claimant_done
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.mark_done(actor=hood.staff, claim_id=claim.id)
    done = await board.mark_done(actor=hood.unit_member, claim_id=claim.id)
    assert done.status == "done" and done.done_at is not None

    item = await board.get_item(viewer=None, item_id=need.id)
    assert item.claimed == 1 and item.remaining == 1
    assert [c.status for c in item.claims] == ["done"]
    assert item.claims[0].progress_note is None  # progress is for the two sides


async def test_a_community_claims_a_resource(hood: Neighbourhood) -> None:
    resource = await publish_resource(hood)
    with pytest.raises(Forbidden):
        await board.claim_item(
            actor=hood.neighbour, item_id=resource.id, community_id=hood.community.id
        )
    claim = await board.claim_item(
        actor=hood.other_staff, item_id=resource.id, community_id=hood.other_community.id
    )
    assert claim.claimant_name == "新闸社区"
    # The unit that offers the resource is its publisher.
    with pytest.raises(exc.NotBoardSide):
        await board.confirm_claim(actor=hood.staff, claim_id=claim.id)
    assert (await board.confirm_claim(actor=hood.unit_member, claim_id=claim.id)).status == (
        "confirmed"
    )
    mine = await board.list_claims_for(actor=hood.unit_member, page=PageRequest())
    assert [c.id for c in mine.items] == [claim.id]
    theirs = await board.list_claims_for(actor=hood.other_staff, page=PageRequest())
    assert [c.actions for c in theirs.items] == [["cancel", "progress", "done"]]
    assert (await board.list_claims_for(actor=hood.neighbour, page=PageRequest())).items == []


async def test_decline_and_cancel_free_the_place(hood: Neighbourhood) -> None:
    need = await publish_need(hood, quantity=1)
    other_unit = await make_unit(name="数智科技", community=hood.other_community)
    other_member = await make_user(unit=other_unit)
    first = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    with pytest.raises(exc.BoardItemFull):
        await board.claim_item(actor=other_member, item_id=need.id, unit_id=other_unit.id)

    with pytest.raises(exc.NotBoardSide):
        await board.decline_claim(actor=hood.unit_member, claim_id=first.id)
    declined = await board.decline_claim(actor=hood.staff, claim_id=first.id)
    assert declined.status == "declined"
    second = await board.claim_item(actor=other_member, item_id=need.id, unit_id=other_unit.id)
    with pytest.raises(exc.NotBoardSide):
        await board.cancel_claim(actor=hood.staff, claim_id=second.id)
    assert (await board.cancel_claim(actor=other_member, claim_id=second.id)).status == "cancelled"
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.cancel_claim(actor=other_member, claim_id=second.id)
    # The first unit may claim again once its claim is no longer live.
    again = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    assert again.status == "pending"
    assert (await BoardItem.get(id=need.id)).claimed == 1


async def test_a_closed_item_takes_no_claims(hood: Neighbourhood) -> None:
    need = await publish_need(hood)
    with pytest.raises(exc.NotBoardSide):
        await board.close_item(actor=hood.unit_member, item_id=need.id)
    closed = await board.close_item(actor=hood.staff, item_id=need.id)
    assert closed.status == "closed" and closed.actions == []
    with pytest.raises(exc.BoardItemClosed):
        await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    with pytest.raises(NotFound):
        await board.get_item(viewer=None, item_id=need.id + 100)


async def test_street_admins_see_the_matching_across_communities(hood: Neighbourhood) -> None:
    need = await publish_need(hood, category="健康医疗")
    await publish_resource(hood, category="健康医疗")
    await publish_resource(hood, category="法律咨询")
    claim = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    await board.confirm_claim(actor=hood.staff, claim_id=claim.id)
    with pytest.raises(Forbidden):
        await board.matching(actor=hood.staff)
    result = await board.matching(actor=hood.street_admin)
    rows = {r.community_name: r for r in result.communities}
    assert rows["大田社区"].needs == 1 and rows["大田社区"].needs_claimed == 1
    assert rows["新闸社区"].needs == 0
    assert [s.need.id for s in result.suggestions] == [need.id]
    assert [r.title for r in result.suggestions[0].resources] == ["社区义诊"]


async def test_lists_filter(hood: Neighbourhood) -> None:
    need = await publish_need(hood, quantity=1)
    resource = await publish_resource(hood)
    page = PageRequest()
    assert [i.id for i in (await board.list_items(page=page)).items] == [resource.id, need.id]
    assert [i.id for i in (await board.list_items(page=page, kind="need")).items] == [need.id]
    await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    assert [i.id for i in (await board.list_items(page=page, open_only=True)).items] == [
        resource.id
    ]
    with pytest.raises(Invalid):
        await board.list_items(page=page, kind="wish")


# --- notices: each step tells the other side, once ---


async def board_notices() -> list[OutboxMessage]:
    return await OutboxMessage.filter(dedupe_key__startswith="board:").order_by("id")


async def who_heard_what() -> list[tuple[int | None, str]]:
    """(recipient, heading) of every queued board notice, in order."""
    return [(r.user_id, r.context["title"].split("：")[0]) for r in await board_notices()]


async def see_a_need_through(hood: Neighbourhood) -> int:
    """A need claimed, confirmed, noted by both sides and done; each step also repeated
    where a repeat is refused. Returns the need's id."""
    need = await publish_need(hood)
    claim = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    with pytest.raises(exc.BoardAlreadyClaimed):
        await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    await board.confirm_claim(actor=hood.staff, claim_id=claim.id)
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.confirm_claim(actor=hood.staff, claim_id=claim.id)
    await board.record_progress(
        actor=hood.unit_member, claim_id=claim.id, note="已安排 3 名老师，本周二开始"
    )
    await board.record_progress(actor=hood.staff, claim_id=claim.id, note="老人们很期待")
    await board.mark_done(actor=hood.staff, claim_id=claim.id)
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.mark_done(actor=hood.staff, claim_id=claim.id)
    await board.mark_done(actor=hood.unit_member, claim_id=claim.id)
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.mark_done(actor=hood.unit_member, claim_id=claim.id)
    return need.id


async def decline_then_cancel_a_resource(hood: Neighbourhood) -> int:
    """A resource claimed and declined, claimed again and cancelled. Returns its id."""
    resource = await publish_resource(hood)
    first = await board.claim_item(
        actor=hood.other_staff, item_id=resource.id, community_id=hood.other_community.id
    )
    await board.decline_claim(actor=hood.unit_member, claim_id=first.id)
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.decline_claim(actor=hood.unit_member, claim_id=first.id)
    second = await board.claim_item(
        actor=hood.other_staff, item_id=resource.id, community_id=hood.other_community.id
    )
    await board.cancel_claim(actor=hood.other_staff, claim_id=second.id)
    with pytest.raises(exc.BoardClaimStateInvalid):
        await board.cancel_claim(actor=hood.other_staff, claim_id=second.id)
    return resource.id


async def test_each_step_on_a_need_tells_the_other_side_once(hood: Neighbourhood) -> None:
    await publish_need(hood)
    assert await who_heard_what() == []  # publishing tells nobody
    await see_a_need_through(hood)
    staff, member = hood.staff.id, hood.unit_member.id
    assert await who_heard_what() == [
        (staff, "新的认领"),
        (member, "认领已确认"),
        (staff, "对接有新进展"),
        (member, "对接有新进展"),
        (member, "对方已标记完成"),
        (staff, "对接已完成"),
    ]
    claimed, confirmed, progress, *_ = [r.context for r in await board_notices()]
    assert claimed["body"] == "育才学校认领了您发布的社区需求“助老陪护志愿者”，请尽快确认或婉拒。"
    assert claimed["publisher"] == "育才学校"
    assert confirmed["publisher"] == "大田社区"
    assert progress["body"].endswith("：已安排 3 名老师，本周二开始")


async def test_declines_and_cancellations_on_a_resource_are_told(hood: Neighbourhood) -> None:
    await decline_then_cancel_a_resource(hood)
    # The resource's publisher is the unit member who offered it; the claimant the staff member.
    publisher, claimant = hood.unit_member.id, hood.other_staff.id
    assert await who_heard_what() == [
        (publisher, "新的认领"),
        (claimant, "认领未通过"),
        (publisher, "新的认领"),
        (publisher, "认领已取消"),
    ]
    declined, cancelled = [(await board_notices())[i].context for i in (1, 3)]
    assert declined["publisher"] == "育才学校"
    assert cancelled["publisher"] == "新闸社区"


async def test_a_retried_notice_is_queued_once(hood: Neighbourhood) -> None:
    need = await publish_need(hood)
    made = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    claim, item = await board._load_claim(made.id)
    event = await BoardEvent.get(claim_id=claim.id, action="claimed")
    # The same step enqueued again (a retry): its dedupe key is already there.
    await board._notify(item, claim, event, actor=hood.unit_member, by=board.CLAIMANT_STEP)
    assert await who_heard_what() == [(hood.staff.id, "新的认领")]


async def test_nobody_is_told_of_their_own_step(hood: Neighbourhood) -> None:
    # Staff of the other community and a member of the offering unit: both sides at once.
    both = await make_staff(hood.other_community, nickname="孙干事", unit=hood.unit)
    resource = await publish_item(
        actor=both,
        kind="resource",
        unit_id=hood.unit.id,
        title="会议室借用",
        description="周末可借用学校会议室。",
        category="场地设施",
        quantity=1,
    )
    claim = await board.claim_item(
        actor=both, item_id=resource.id, community_id=hood.other_community.id
    )
    await board.confirm_claim(actor=both, claim_id=claim.id)
    await board.mark_done(actor=both, claim_id=claim.id)
    assert (await BoardClaim.get(id=claim.id)).status == "done"
    assert await who_heard_what() == []


async def test_every_board_notice_renders_for_wechat(hood: Neighbourhood) -> None:
    from bot.render import render

    need_id = await see_a_need_through(hood)
    resource_id = await decline_then_cancel_a_resource(hood)
    rows = await board_notices()
    assert {r.context["title"].split("：")[0] for r in rows} == {
        heading for heading, _, _ in board.STEP_NOTICES.values()
    }
    for row in rows:
        assert row.template_key == "notice" and row.channel == "user"
        rendered = render("notice", row.context, now=clock.now(), timezone="Asia/Shanghai")
        assert rendered.url in (f"/h5/wishes/board/{need_id}", f"/h5/wishes/board/{resource_id}")
        assert all(rendered.fields.values())
        assert len(rendered.fields["thing1"]) <= 20 and len(rendered.fields["thing4"]) <= 20
        assert row.context["body"] in rendered.markdown


QUANTITY = 5
UNITS = 40


async def test_concurrent_claims_never_exceed_the_quantity(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    need = await publish_need(hood, quantity=QUANTITY)
    members = []
    for i in range(UNITS):
        unit = await make_unit(name=f"单位{i}", community=hood.community)
        members.append((await make_user(unit=unit), unit))

    async def claim(member, unit) -> httpx.Response:
        return await client.post(
            f"/api/v1/board/items/{need.id}/claims",
            json={"unit_id": unit.id},
            headers=auth_headers(member),
        )

    responses = await asyncio.gather(*(claim(m, u) for m, u in members))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * QUANTITY + [409] * (UNITS - QUANTITY), statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "board_item_full"
    }
    assert (await BoardItem.get(id=need.id)).claimed == QUANTITY
    assert await BoardClaim.filter(item_id=need.id).count() == QUANTITY


async def test_one_unit_claiming_many_times_at_once_gets_one_place(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    need = await publish_need(hood, quantity=QUANTITY)
    headers = auth_headers(hood.unit_member)
    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/board/items/{need.id}/claims",
                json={"unit_id": hood.unit.id},
                headers=headers,
            )
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    assert (await BoardItem.get(id=need.id)).claimed == 1


async def test_the_board_over_http(client: httpx.AsyncClient, hood: Neighbourhood) -> None:
    created = await client.post(
        "/api/v1/board/items",
        json={
            "kind": "need",
            "community_id": hood.community.id,
            "title": "楼道清洁",
            "description": "清理 5 号楼楼道堆物",
            "category": "环境整治",
            "quantity": 2,
        },
        headers=auth_headers(hood.staff),
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    listed = await client.get("/api/v1/board/items?kind=need")
    assert [i["id"] for i in listed.json()["items"]] == [item_id]
    claimed = await client.post(
        f"/api/v1/board/items/{item_id}/claims",
        json={"unit_id": hood.unit.id},
        headers=auth_headers(hood.unit_member),
    )
    assert claimed.status_code == 201
    claim_id = claimed.json()["id"]
    for path, user in (
        ("confirm", hood.staff),
        ("done", hood.staff),
        ("done", hood.unit_member),
    ):
        response = await client.post(
            f"/api/v1/board/claims/{claim_id}/{path}", headers=auth_headers(user)
        )
        assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    matching = await client.get("/api/v1/board/matching", headers=auth_headers(hood.staff))
    assert matching.status_code == 403
    matching = await client.get("/api/v1/board/matching", headers=auth_headers(hood.street_admin))
    assert matching.status_code == 200
    mine = await client.get("/api/v1/me/board-claims", headers=auth_headers(hood.unit_member))
    assert [c["id"] for c in mine.json()["items"]] == [claim_id]
