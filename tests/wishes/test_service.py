"""The wish lifecycle: every transition, who may make it, and what it leaves behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.config import reset_settings
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.points import rules as points_rules
from backend.points.models import PointsLedgerEntry
from backend.points.schemas import RuleIn
from backend.wishes import contacts, lists, service
from backend.wishes import exceptions as exc
from backend.wishes.models import Wish, WishClaimer, WishEvent, WishPhoto
from backend.wishes.schemas import WishOut
from tests.factories import (
    COMMUNITY_CONTACT,
    RESIDENT_PHONE,
    Neighbourhood,
    make_party_member,
    make_user,
)
from tests.factories.wishes import RESIDENT_PHONE_MASKED, open_wish, post_wish, submit_wish

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def notices_to(user: User) -> list[dict]:
    rows = await OutboxMessage.filter(user_id=user.id, template_key="wish").order_by("id")
    return [r.context for r in rows]


async def open_claims(user: User) -> int:
    row = await WishClaimer.get_or_none(user_id=user.id)
    return row.open_claims if row else 0


# --- posting and review ---


async def test_a_resident_posts_a_wish_for_review(hood: Neighbourhood) -> None:
    wish = await post_wish(hood)
    assert wish.status == "pending_review"
    assert wish.viewer == "poster"
    assert wish.actions == ["withdraw"]
    assert [e.action for e in wish.history] == ["submitted"]
    # Unreviewed: nobody else sees it, not even on the board.
    for other in (None, hood.neighbour, hood.other_staff):
        with pytest.raises(NotFound):
            await contacts.get_wish(viewer=other, wish_id=wish.id)
    assert (await contacts.get_wish(viewer=hood.staff, wish_id=wish.id)).viewer == "staff"
    assert (await lists.list_wishes(page=PageRequest())).items == []


@pytest.mark.parametrize("who", ["newcomer", "party_member", "unit_member"])
async def test_only_residents_of_the_community_post_there(hood: Neighbourhood, who: str) -> None:
    # A party member of the other community: the neighbourhood's own lives in this one.
    user = (
        await make_party_member(hood.other_community)
        if who == "party_member"
        else getattr(hood, who)
    )
    with pytest.raises(exc.NotResident):
        await submit_wish(
            user=user,
            community_id=hood.community.id,
            title="标题标题",
            description="一个小小的心愿",
            category="其他",
        )


async def test_bad_wish_input_is_refused_field_by_field(hood: Neighbourhood) -> None:
    with pytest.raises(Invalid) as caught:
        await post_wish(hood, title="x")
    assert "title" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        await post_wish(hood, needed_by=date(2000, 1, 1))
    assert "needed_by" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        await submit_wish(
            user=hood.resident,
            community_id=hood.community.id,
            title="标题标题",
            description="一个小小的心愿",
            category="买房",
        )
    assert "category" in caught.value.fields


async def test_staff_of_the_community_approve_and_the_poster_is_told(hood: Neighbourhood) -> None:
    wish = await post_wish(hood)
    for outsider in (hood.other_staff, hood.neighbour, hood.resident):
        with pytest.raises(Forbidden):
            await service.review_wish(actor=outsider, wish_id=wish.id, approve=True)

    approved = await service.review_wish(actor=hood.staff, wish_id=wish.id, approve=True)
    assert approved.status == "open"
    assert (await notices_to(hood.resident))[-1]["status"] == "approved"
    with pytest.raises(exc.NotPending):
        await service.review_wish(
            actor=hood.street_admin, wish_id=wish.id, approve=False, reason="重复"
        )
    public = await contacts.get_wish(viewer=None, wish_id=wish.id)
    assert public.status == "open" and public.poster_name == "王**"


async def test_rejection_needs_a_reason_and_hides_the_wish(hood: Neighbourhood) -> None:
    wish = await post_wish(hood)
    with pytest.raises(Invalid):
        await service.review_wish(actor=hood.staff, wish_id=wish.id, approve=False)
    rejected = await service.review_wish(
        actor=hood.street_admin, wish_id=wish.id, approve=False, reason="内容含个人信息"
    )
    assert rejected.status == "rejected"
    assert rejected.review_reason == "内容含个人信息"
    last = (await notices_to(hood.resident))[-1]
    assert last["status"] == "rejected" and "个人信息" in last["note"]
    with pytest.raises(NotFound):
        await contacts.get_wish(viewer=hood.neighbour, wish_id=wish.id)
    with pytest.raises(exc.NotOpen):
        await service.claim_wish(user=hood.neighbour, wish_id=wish.id)


# --- claiming ---


async def test_first_claim_wins_and_the_poster_is_told(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    claimed = await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    assert claimed.status == "claimed"
    assert claimed.viewer == "claimer"
    assert claimed.actions == ["fulfil", "release"]
    # Claiming alone shares nothing personal (see test_trust.py for accepting).
    assert claimed.contact is None
    assert claimed.poster_phone_masked == RESIDENT_PHONE_MASKED
    assert claimed.community_contact is not None
    assert claimed.community_contact.phone == COMMUNITY_CONTACT[1]
    assert claimed.claimed_by == "李**"
    assert (await notices_to(hood.resident))[-1]["status"] == "claimed"
    assert await open_claims(hood.neighbour) == 1

    with pytest.raises(exc.AlreadyClaimed):
        await service.claim_wish(user=hood.party_member, wish_id=wish.id)
    assert await open_claims(hood.party_member) == 0  # the refused claim held nothing


async def test_who_may_not_claim(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    with pytest.raises(exc.OwnWish):
        await service.claim_wish(user=hood.resident, wish_id=wish.id)
    with pytest.raises(exc.NotEligible):
        await service.claim_wish(user=hood.newcomer, wish_id=wish.id)
    with pytest.raises(exc.NotUnitMember):
        await service.claim_wish(user=hood.neighbour, wish_id=wish.id, unit_id=hood.unit.id)
    with pytest.raises(NotFound):
        await service.claim_wish(user=hood.neighbour, wish_id=wish.id + 1000)
    pending = await post_wish(hood)
    with pytest.raises(exc.NotOpen):
        await service.claim_wish(user=hood.neighbour, wish_id=pending.id)


@pytest.mark.parametrize("who", ["neighbour", "party_member", "unit_member", "other_staff"])
async def test_residents_party_members_and_unit_members_may_claim(
    hood: Neighbourhood, who: str
) -> None:
    wish = await open_wish(hood)
    claimed = await service.claim_wish(user=getattr(hood, who), wish_id=wish.id)
    assert claimed.status == "claimed"


async def test_a_unit_member_claims_for_their_unit_and_the_unit_gets_the_credit(
    hood: Neighbourhood,
) -> None:
    wish = await open_wish(hood)
    claimed = await service.claim_wish(user=hood.unit_member, wish_id=wish.id, unit_id=hood.unit.id)
    assert claimed.claimed_by == "育才学校"
    assert claimed.claimer_unit_id == hood.unit.id
    public = (await lists.list_wishes(page=PageRequest())).items[0]
    assert public.claimed_by == "育才学校"
    assert (await notices_to(hood.resident))[-1]["note"] == "认领方：育才学校"

    await service.fulfil_wish(user=hood.unit_member, wish_id=wish.id, note="已陪同复诊")
    await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=5)
    credits = await lists.unit_credits(actor=hood.staff)
    assert [(c.unit_name, c.claimed, c.fulfilled, c.closed) for c in credits] == [
        ("育才学校", 0, 0, 1)
    ]
    # Points go to the person who did it.
    assert (await User.get(id=hood.unit_member.id)).points_balance == 10
    with pytest.raises(Forbidden):
        await lists.unit_credits(actor=hood.neighbour)


async def test_release_gives_the_wish_back(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id, unit_id=None)
    for outsider in (hood.resident, hood.staff, hood.party_member):
        with pytest.raises(exc.NotClaimer):
            await service.release_wish(user=outsider, wish_id=wish.id)
    released = await service.release_wish(user=hood.neighbour, wish_id=wish.id)
    assert released.status == "open" and released.claimed_by is None
    assert released.contact is None  # no longer the claimer: the contact is gone again
    assert await open_claims(hood.neighbour) == 0
    assert (await notices_to(hood.resident))[-1]["status"] == "released"
    with pytest.raises(exc.NotClaimer):
        await service.release_wish(user=hood.neighbour, wish_id=wish.id)
    again = await service.claim_wish(user=hood.party_member, wish_id=wish.id)
    assert again.claimed_by == "王**"


async def test_fulfil_with_a_photo_then_the_poster_confirms_and_points_pay_once(
    hood: Neighbourhood,
) -> None:
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    for outsider in (hood.resident, hood.staff):
        with pytest.raises(exc.NotClaimer):
            await service.fulfil_wish(user=outsider, wish_id=wish.id, note="完成了")
    with pytest.raises(Invalid):
        await service.fulfil_wish(
            user=hood.neighbour, wish_id=wish.id, note="完成了", photo=("image/png", b"GIF89a")
        )
    with pytest.raises(exc.NotFulfilled):
        await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=5)

    fulfilled = await service.fulfil_wish(
        user=hood.neighbour, wish_id=wish.id, note="已陪同复诊", photo=("image/png", PNG)
    )
    assert fulfilled.status == "fulfilled" and fulfilled.has_photo
    assert await open_claims(hood.neighbour) == 0
    assert (await notices_to(hood.resident))[-1]["status"] == "fulfilled"
    photo = await contacts.get_wish_photo(viewer=hood.resident, wish_id=wish.id)
    assert photo.content == PNG
    with pytest.raises(NotFound):
        await contacts.get_wish_photo(viewer=hood.party_member, wish_id=wish.id)
    with pytest.raises(exc.NotClaimed):
        await service.fulfil_wish(user=hood.neighbour, wish_id=wish.id, note="再完成一次")

    for outsider in (hood.neighbour, hood.staff):
        with pytest.raises(exc.NotPoster):
            await service.confirm_wish(user=outsider, wish_id=wish.id, rating=5)
    with pytest.raises(Invalid):
        await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=6)
    closed = await service.confirm_wish(
        user=hood.resident, wish_id=wish.id, rating=5, thanks="谢谢李师傅！"
    )
    assert closed.status == "closed" and closed.rating == 5 and closed.thanks == "谢谢李师傅！"
    last = (await notices_to(hood.neighbour))[-1]
    assert last["status"] == "closed" and "谢谢李师傅" in last["note"] and "+10" in last["note"]
    with pytest.raises(exc.NotFulfilled):
        await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=4)

    ledger = await PointsLedgerEntry.filter(user_id=hood.neighbour.id)
    assert [(e.delta, e.source_type, e.source_id) for e in ledger] == [(10, "wish", str(wish.id))]
    assert (await User.get(id=hood.neighbour.id)).points_balance == 10
    assert await WishPhoto.filter(wish_id=wish.id).count() == 1


async def test_simultaneous_confirmations_pay_once(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    await service.fulfil_wish(user=hood.neighbour, wish_id=wish.id, note="已完成")
    results = await asyncio.gather(
        *(service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=5) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, exc.NotFulfilled) for r in results if isinstance(r, Exception))
    assert (await User.get(id=hood.neighbour.id)).points_balance == 10


async def test_the_poster_withdraws_only_before_a_claim(hood: Neighbourhood) -> None:
    pending = await post_wish(hood)
    with pytest.raises(exc.NotPoster):
        await service.withdraw_wish(user=hood.staff, wish_id=pending.id)
    assert (
        await service.withdraw_wish(user=hood.resident, wish_id=pending.id)
    ).status == "withdrawn"
    with pytest.raises(exc.CannotWithdraw):
        await service.withdraw_wish(user=hood.resident, wish_id=pending.id)

    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    with pytest.raises(exc.CannotWithdraw):
        await service.withdraw_wish(user=hood.resident, wish_id=wish.id)


async def test_staff_remove_an_abusive_wish_and_the_claim_is_freed(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    for outsider in (hood.other_staff, hood.neighbour, hood.resident):
        with pytest.raises(Forbidden):
            await service.remove_wish(actor=outsider, wish_id=wish.id, reason="广告内容")
    removed = await service.remove_wish(actor=hood.staff, wish_id=wish.id, reason="广告内容")
    assert removed.status == "removed"
    assert await open_claims(hood.neighbour) == 0
    assert (await notices_to(hood.resident))[-1]["status"] == "removed"
    assert (await notices_to(hood.neighbour))[-1]["status"] == "removed"
    with pytest.raises(NotFound):
        await contacts.get_wish(viewer=None, wish_id=wish.id)
    with pytest.raises(exc.NotOpen):
        await service.claim_wish(user=hood.party_member, wish_id=wish.id)
    with pytest.raises(Exception) as caught:
        await service.remove_wish(actor=hood.staff, wish_id=wish.id, reason="再次关闭")
    assert caught.value.code == "already_final"


async def test_the_history_is_for_poster_and_staff(hood: Neighbourhood) -> None:
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    await service.release_wish(user=hood.neighbour, wish_id=wish.id)
    await service.claim_wish(user=hood.party_member, wish_id=wish.id)
    await service.fulfil_wish(user=hood.party_member, wish_id=wish.id, note="完成")
    await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=4)

    for viewer in (hood.resident, hood.staff):
        history = (await contacts.get_wish(viewer=viewer, wish_id=wish.id)).history
        assert [(e.action, e.from_status, e.to_status, e.actor) for e in history] == [
            ("submitted", None, "pending_review", "心愿人"),
            ("approved", "pending_review", "open", "社区工作人员"),
            ("claimed", "open", "claimed", "认领人"),
            ("released", "claimed", "open", "认领人"),
            ("claimed", "open", "claimed", "认领人"),
            ("fulfilled", "claimed", "fulfilled", "认领人"),
            ("closed", "fulfilled", "closed", "心愿人"),
        ]
    for viewer in (None, hood.neighbour, hood.party_member):
        assert (await contacts.get_wish(viewer=viewer, wish_id=wish.id)).history is None


# --- the per-person claim limit ---


@pytest.fixture
def claim_limit_two(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINLI_WISH_CLAIM_LIMIT", "2")
    reset_settings()
    yield 2
    reset_settings()


async def test_a_person_holds_at_most_the_limit_of_open_claims(
    hood: Neighbourhood, claim_limit_two: int
) -> None:
    wishes = [await open_wish(hood, title=f"心愿 {i}") for i in range(3)]
    await service.claim_wish(user=hood.neighbour, wish_id=wishes[0].id)
    await service.claim_wish(user=hood.neighbour, wish_id=wishes[1].id)
    with pytest.raises(exc.ClaimLimitReached):
        await service.claim_wish(user=hood.neighbour, wish_id=wishes[2].id)
    assert (await Wish.get(id=wishes[2].id)).status == "open"
    # Fulfilling one frees a place.
    await service.fulfil_wish(user=hood.neighbour, wish_id=wishes[0].id, note="完成了")
    await service.claim_wish(user=hood.neighbour, wish_id=wishes[2].id)
    assert await open_claims(hood.neighbour) == 2


async def test_the_limit_holds_when_one_person_claims_many_at_once(
    hood: Neighbourhood, claim_limit_two: int
) -> None:
    wishes = [await open_wish(hood, title=f"心愿 {i}") for i in range(8)]
    results = await asyncio.gather(
        *(service.claim_wish(user=hood.neighbour, wish_id=w.id) for w in wishes),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 2
    assert all(isinstance(r, exc.ClaimLimitReached) for r in results if isinstance(r, Exception))
    assert await Wish.filter(claimer_id=hood.neighbour.id).count() == 2
    assert await open_claims(hood.neighbour) == 2


# --- automatic release by the bot's scheduler ---


async def test_an_overdue_claim_is_released_by_the_scheduler_job(
    hood: Neighbourhood, settings
) -> None:
    from bot.jobs_wishes import release_overdue_wish_claims
    from bot.scheduler import JOBS

    assert release_overdue_wish_claims in [job.run for job in JOBS]
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    clock.set(start)
    wish = await open_wish(hood)
    claimed = await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    assert claimed.claim_due_at == start + timedelta(days=7)

    clock.set(start + timedelta(days=6, hours=23))
    await release_overdue_wish_claims(settings)
    assert (await Wish.get(id=wish.id)).status == "claimed"

    clock.set(start + timedelta(days=7, minutes=1))
    await release_overdue_wish_claims(settings)
    released = await contacts.get_wish(viewer=hood.resident, wish_id=wish.id)
    assert released.status == "open" and released.claimed_by is None
    assert released.history[-1].action == "auto_released"
    assert released.history[-1].actor == "系统"
    assert (await notices_to(hood.resident))[-1]["status"] == "released"
    assert (await notices_to(hood.neighbour))[-1]["status"] == "released"
    assert await open_claims(hood.neighbour) == 0
    # Running again (or in another bot process) finds nothing more to do.
    assert await service.release_overdue_claims() == 0
    assert await WishEvent.filter(wish_id=wish.id, action="auto_released").count() == 1


async def test_a_claim_is_due_by_the_end_of_the_day_the_wish_is_needed(hood: Neighbourhood) -> None:
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    clock.set(start)
    wish = await open_wish(hood, needed_by=date(2025, 3, 5))  # Wednesday
    claimed = await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    # Midnight after Wednesday, Shanghai time.
    assert claimed.claim_due_at == datetime(2025, 3, 5, 16, 0, tzinfo=UTC)
    clock.set(datetime(2025, 3, 5, 16, 1, tzinfo=UTC))
    assert await service.release_overdue_claims() == 1


async def test_parallel_release_runs_release_once(hood: Neighbourhood) -> None:
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    clock.set(start)
    wishes = [await open_wish(hood, title=f"心愿 {i}") for i in range(3)]
    claimers = [hood.neighbour, hood.party_member, hood.unit_member]
    for wish, claimer in zip(wishes, claimers, strict=True):
        await service.claim_wish(user=claimer, wish_id=wish.id)
    clock.set(start + timedelta(days=30))
    counts = await asyncio.gather(*(service.release_overdue_claims() for _ in range(4)))
    assert sum(counts) == 3
    assert await WishEvent.filter(action="auto_released").count() == 3
    assert [await open_claims(c) for c in claimers] == [0, 0, 0]


# --- privacy ---


def test_phone_and_id_numbers_are_found_and_masked() -> None:
    text = "请联系 13812345678 或 139-1234-5678，座机 021-62171234，身份证 31010119800101123X。"
    kinds = [f.kind for f in contacts.find_personal_data(text)]
    assert kinds == ["phone", "phone", "landline", "id_number"]
    masked = contacts.redact_personal(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "139****5678" in masked
    assert "021-****1234" in masked
    assert "310101********123X" in masked
    segments = contacts.highlight_segments(text)
    assert "".join(piece for piece, _ in segments) == text
    assert [kind for _, kind in segments if kind] == kinds
    assert contacts.find_personal_data("订单号 2024010112345678901 共 3 件") == []


async def test_public_views_mask_text_and_never_show_contact(hood: Neighbourhood) -> None:
    wish = await open_wish(hood, description="我的电话 13812345678，请联系我。")
    public = await contacts.get_wish(viewer=hood.neighbour, wish_id=wish.id)
    assert "13812345678" not in public.description and "138****5678" in public.description
    assert public.contact is None and public.flags is None and public.fulfil_note is None
    listed = (await lists.list_wishes(page=PageRequest())).items[0]
    assert "13812345678" not in WishOut.of(listed).model_dump_json()
    staff_view = await contacts.get_wish(viewer=hood.staff, wish_id=wish.id)
    assert [f.kind for f in staff_view.flags] == ["phone"]
    assert staff_view.contact.phone == RESIDENT_PHONE


async def test_lists_filter_by_community_status_and_category(hood: Neighbourhood) -> None:
    first = await open_wish(hood)
    second = await open_wish(hood, title="辅导孩子功课")
    await service.claim_wish(user=hood.neighbour, wish_id=second.id)
    await post_wish(hood, title="还没审核的")
    page = PageRequest()
    assert [w.id for w in (await lists.list_wishes(page=page)).items] == [second.id, first.id]
    assert [w.id for w in (await lists.list_wishes(page=page, status="open")).items] == [first.id]
    assert (await lists.list_wishes(page=page, community_id=hood.other_community.id)).items == []
    assert (await lists.list_wishes(page=page, category="儿童心愿")).items == []
    with pytest.raises(Invalid):
        await lists.list_wishes(page=page, status="pending_review")
    mine = await lists.list_my_wishes(user=hood.resident, page=page)
    assert len(mine.items) == 3
    claims = await lists.list_my_claims(user=hood.neighbour, page=page)
    assert [w.id for w in claims.items] == [second.id]
    queue = await lists.list_staff_wishes(actor=hood.staff, page=page, status="pending_review")
    assert [w.title for w in queue.items] == ["还没审核的"]
    assert (await lists.list_staff_wishes(actor=hood.other_staff, page=page)).items == []
    with pytest.raises(Forbidden):
        await lists.list_staff_wishes(
            actor=hood.other_staff, page=page, community_id=hood.community.id
        )


async def test_a_party_member_without_a_community_may_claim(hood: Neighbourhood) -> None:
    member = await make_user(
        nickname="孙党员", community=hood.other_community, roles=["party_member"]
    )
    await User.filter(id=member.id).update(community_id=None)
    member = await User.get(id=member.id)
    wish = await open_wish(hood)
    assert (await service.claim_wish(user=member, wish_id=wish.id)).status == "claimed"


async def test_every_wish_notice_renders_for_wechat(hood: Neighbourhood) -> None:
    from bot.render import render

    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    await service.release_wish(user=hood.neighbour, wish_id=wish.id)
    await service.claim_wish(user=hood.party_member, wish_id=wish.id)
    await contacts.accept_wish(
        actor=hood.resident, wish_id=wish.id, claimer_id=hood.party_member.id
    )
    await service.fulfil_wish(user=hood.party_member, wish_id=wish.id, note="完成了")
    await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=5, thanks="谢谢")
    rows = await OutboxMessage.filter(template_key="wish")
    assert {r.context["status"] for r in rows} == {
        "approved",
        "claimed",
        "accepted",
        "released",
        "fulfilled",
        "closed",
    }
    for row in rows:
        rendered = render("wish", row.context, now=clock.now(), timezone="Asia/Shanghai")
        assert rendered.url == f"/h5/wishes/{wish.id}"
        assert RESIDENT_PHONE not in str(rendered.fields)
        if row.context["status"] == "accepted":
            assert "已接受认领" in str(rendered.fields)


async def test_a_confirmed_wish_is_priced_by_the_earning_rule(hood: Neighbourhood) -> None:
    await points_rules.create_rule(
        actor=hood.street_admin, data=RuleIn(event_type="wish_fulfilled", points=25)
    )
    wish = await open_wish(hood)
    await service.claim_wish(user=hood.neighbour, wish_id=wish.id)
    await service.fulfil_wish(user=hood.neighbour, wish_id=wish.id, note="已陪同复诊")
    await service.confirm_wish(user=hood.resident, wish_id=wish.id, rating=5)
    assert (await User.get(id=hood.neighbour.id)).points_balance == 25
    assert "+25" in (await notices_to(hood.neighbour))[-1]["note"]
