"""The party service: report-in and review, roles, posts and their limits, who may do what."""

from __future__ import annotations

import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.party import service
from backend.party.models import PartyRegistration, PostAssignment, ServicePost
from backend.points import service as points_service
from backend.points.models import PointsLedgerEntry
from tests.factories import make_community, make_user
from tests.party.helpers import form, local, make_member, make_post


@pytest.fixture(autouse=True)
def _in_2026():
    clock.set(local(2026, 3, 2, 10, 0))


async def _setup():
    community = await make_community()
    staff = await make_user(community=community, roles=["staff"])
    return community, staff


# --- report-in and review ---


async def test_report_in_is_pending_and_once_per_person(db):
    community, _ = await _setup()
    user = await make_user(community=community)
    registration = await service.register(user=user, form=form(community))
    assert registration.status == "pending"
    assert registration.active_key == f"u{user.id}"
    assert service.registration_phone(registration) == "139****5678"
    assert registration.skills_text == "|文明劝导|法律咨询|"
    with pytest.raises(service.AlreadyRegistered) as caught:
        await service.register(user=user, form=form(community))
    assert caught.value.code == "already_registered"
    assert await PartyRegistration.filter(user_id=user.id).count() == 1


async def test_report_in_form_is_validated(db):
    community, _ = await _setup()
    user = await make_user(community=community)
    bad = form(
        community,
        name=" ",
        phone="12345",
        skills=["会飞"],
        available_times=["半夜"],
        party_org_phone="打电话",
        community_id=community.id + 999,
    )
    with pytest.raises(Invalid) as caught:
        await service.register(user=user, form=bad)
    assert set(caught.value.fields) == {
        "name",
        "phone",
        "skills",
        "available_times",
        "party_org_phone",
        "community_id",
    }


async def test_preferred_posts_must_belong_to_the_community(db):
    community, staff = await _setup()
    other = await make_community()
    other_staff = await make_user(community=other, roles=["staff"])
    mine = await make_post(community, staff)
    theirs = await make_post(other, other_staff)
    user = await make_user(community=community)
    with pytest.raises(Invalid) as caught:
        await service.register(
            user=user, form=form(community, preferred_post_ids=[mine.id, theirs.id])
        )
    assert "preferred_post_ids" in caught.value.fields
    registration = await service.register(
        user=user, form=form(community, preferred_post_ids=[mine.id])
    )
    assert registration.preferred_post_ids == [mine.id]


async def test_approval_grants_the_role_in_that_community_and_tells_the_member(db):
    community, staff = await _setup()
    user, registration = await make_member(community, staff)
    assert registration.status == "approved" and registration.reviewed_by_id == staff.id
    assert await accounts_service.has_role(user, "party_member", community.id)
    other = await make_community()
    assert not await accounts_service.has_role(user, "party_member", other.id)
    notice = await OutboxMessage.get(dedupe_key=f"party-review:{registration.id}:approved")
    assert notice.user_id == user.id and notice.context["title"] == "报到审核通过"
    with pytest.raises(service.NotReviewable):
        await service.review_registration(
            actor=staff, registration_id=registration.id, approve=True
        )


async def test_rejection_needs_a_reason_and_leaves_no_role(db):
    community, staff = await _setup()
    user = await make_user(community=community)
    # A stale grant (e.g. made by hand) does not survive a rejection in that community.
    await accounts_service.grant_role(
        actor=None, user_id=user.id, role="party_member", community_id=community.id
    )
    registration = await service.register(user=user, form=form(community))
    with pytest.raises(Invalid):
        await service.review_registration(
            actor=staff, registration_id=registration.id, approve=False
        )
    rejected = await service.review_registration(
        actor=staff, registration_id=registration.id, approve=False, reason="非本社区居民"
    )
    assert rejected.status == "rejected" and rejected.active_key is None
    assert rejected.review_reason == "非本社区居民"
    assert not await accounts_service.has_role(user, "party_member", community.id)
    notice = await OutboxMessage.get(dedupe_key=f"party-review:{registration.id}:rejected")
    assert "非本社区居民" in notice.context["body"]
    # Rejected: a new report-in is possible.
    again = await service.register(user=user, form=form(community))
    assert again.status == "pending"


async def test_rejecting_an_approved_member_takes_the_role_and_the_post(db):
    community, staff = await _setup()
    user, registration = await make_member(community, staff)
    post = await make_post(community, staff)
    await service.claim_post(user=user, post_id=post.id)
    await service.review_registration(
        actor=staff, registration_id=registration.id, approve=False, reason="已迁出本社区"
    )
    assert not await accounts_service.has_role(user, "party_member", community.id)
    assert (await ServicePost.get(id=post.id)).taken == 0
    assignment = await PostAssignment.get(user_id=user.id)
    assert assignment.status == "removed" and assignment.term_key is None


async def test_moving_community_ends_the_old_registration_role_and_post(db):
    old, old_staff = await _setup()
    new, new_staff = await _setup()
    user, first = await make_member(old, old_staff)
    post = await make_post(old, old_staff)
    await service.claim_post(user=user, post_id=post.id)

    second = await service.register(user=user, form=form(new))

    first = await PartyRegistration.get(id=first.id)
    assert first.status == "ended" and first.active_key is None
    assert new.name in first.end_reason
    assert second.status == "pending" and second.active_key == f"u{user.id}"
    assert not await accounts_service.has_role(user, "party_member", old.id)
    assert (await ServicePost.get(id=post.id)).taken == 0
    await service.review_registration(actor=new_staff, registration_id=second.id, approve=True)
    assert await accounts_service.has_role(user, "party_member", new.id)
    assert not await accounts_service.has_role(user, "party_member", old.id)
    assert (await service.my_registration(user=user)).id == second.id


async def test_withdrawing_ends_the_registration(db):
    community, staff = await _setup()
    user, _registration = await make_member(community, staff)
    ended = await service.withdraw_registration(user=user)
    assert ended.status == "ended"
    assert not await accounts_service.has_role(user, "party_member", community.id)
    with pytest.raises(NotFound):
        await service.withdraw_registration(user=user)


async def test_only_staff_of_that_community_review_and_see_the_roster(db):
    community, _staff = await _setup()
    other = await make_community()
    other_staff = await make_user(community=other, roles=["staff"])
    admin = await make_user(roles=["street_admin"])
    resident = await make_user(community=community)
    user = await make_user(community=community)
    registration = await service.register(user=user, form=form(community))
    for outsider in (other_staff, resident):
        with pytest.raises(NotFound):
            await service.review_registration(
                actor=outsider, registration_id=registration.id, approve=True
            )
    # The applicant sees their own registration but cannot approve it.
    with pytest.raises(Forbidden):
        await service.review_registration(actor=user, registration_id=registration.id, approve=True)
    page = PageRequest()
    everything = service.RosterFilter()
    seen = await service.list_registrations(actor=other_staff, page=page, filters=everything)
    assert seen.items == []
    with pytest.raises(Forbidden):
        await service.list_registrations(
            actor=other_staff, page=page, filters=service.RosterFilter(community_id=community.id)
        )
    with pytest.raises(Forbidden):
        await service.list_registrations(actor=resident, page=page, filters=service.RosterFilter())
    seen = await service.list_registrations(actor=admin, page=page, filters=everything)
    assert [r.id for r in seen.items] == [registration.id]
    approved = await service.review_registration(
        actor=admin, registration_id=registration.id, approve=True
    )
    assert approved.status == "approved"


async def test_roster_search_and_filters(db):
    community, staff = await _setup()
    await make_member(community, staff, name="张三", work_unit="静安区税务局", skills=["环境绿化"])
    await make_member(
        community,
        staff,
        name="李四",
        work_unit="上海市第一人民医院",
        phone="13700001111",
        skills=["医疗健康"],
    )
    pending_user = await make_user(community=community)
    await service.register(user=pending_user, form=form(community, name="王五"))

    async def names(**filters) -> list[str]:
        result = await service.list_registrations(
            actor=staff, page=PageRequest(), filters=service.RosterFilter(**filters)
        )
        return sorted(r.name for r in result.items)

    assert await names() == ["张三", "李四", "王五"]
    assert await names(status="pending") == ["王五"]
    assert await names(q="医院") == ["李四"]
    assert await names(q="137 0000 1111") == ["李四"]
    assert await names(skill="环境绿化") == ["张三"]
    assert await names(work_unit="静安区税务局") == ["张三", "王五"]


# --- posts ---


async def test_posts_are_made_by_staff_of_their_community(db):
    community, staff = await _setup()
    other_staff = await make_user(community=await make_community(), roles=["staff"])
    with pytest.raises(Forbidden):
        await make_post(community, other_staff)
    with pytest.raises(Invalid) as caught:
        await make_post(community, staff, capacity=0, title="", term=1999)
    assert set(caught.value.fields) == {"capacity", "title", "term"}
    task = await make_post(community, staff, capacity=0, kind="task", title="社区大扫除")
    assert task.kind == "task" and task.capacity == 0


async def test_claim_needs_an_approved_registration_in_that_community(db):
    community, staff = await _setup()
    post = await make_post(community, staff)
    resident = await make_user(community=community)
    with pytest.raises(service.NotPartyMember) as caught:
        await service.claim_post(user=resident, post_id=post.id)
    assert caught.value.code == "not_party_member" and caught.value.status_code == 403
    await service.register(user=resident, form=form(community))
    with pytest.raises(service.NotPartyMember):  # still pending
        await service.claim_post(user=resident, post_id=post.id)
    other, other_staff = await _setup()
    member, _ = await make_member(other, other_staff)
    with pytest.raises(service.NotPartyMember):  # a member of another community
        await service.claim_post(user=member, post_id=post.id)


async def test_capacity_and_one_post_per_term(db):
    community, staff = await _setup()
    post = await make_post(community, staff, capacity=1)
    second_post = await make_post(community, staff, title="六乱监督岗")
    next_year = await make_post(community, staff, term=2027, title="垃圾分类指导岗")
    alice, _ = await make_member(community, staff)
    bob, _ = await make_member(community, staff)

    assignment = await service.claim_post(user=alice, post_id=post.id)
    assert assignment.status == "active" and assignment.term_key == f"{alice.id}:2026"
    with pytest.raises(service.PostFull) as full:
        await service.claim_post(user=bob, post_id=post.id)
    assert full.value.code == "post_full"
    with pytest.raises(service.AlreadyHasPost) as twice:
        await service.claim_post(user=alice, post_id=second_post.id)
    assert twice.value.code == "already_has_post"
    with pytest.raises(service.AlreadyHasPost):
        await service.claim_post(user=alice, post_id=post.id)
    assert (await service.claim_post(user=alice, post_id=next_year.id)).term == 2027
    assert (await ServicePost.get(id=post.id)).taken == 1
    assert (await ServicePost.get(id=second_post.id)).taken == 0

    released = await service.release_post(user=alice, post_id=post.id)
    assert released.status == "released" and released.term_key is None
    assert (await ServicePost.get(id=post.id)).taken == 0
    with pytest.raises(service.AssignmentNotActive):
        await service.release_post(user=alice, post_id=post.id)
    await service.claim_post(user=bob, post_id=post.id)
    await service.claim_post(user=alice, post_id=second_post.id)


async def test_a_task_is_not_claimed_and_a_closed_post_takes_nobody(db):
    community, staff = await _setup()
    member, _ = await make_member(community, staff)
    task = await make_post(community, staff, kind="task", capacity=0)
    with pytest.raises(service.NotClaimable):
        await service.claim_post(user=member, post_id=task.id)
    post = await make_post(community, staff)
    await service.update_post(actor=staff, post_id=post.id, status="closed")
    with pytest.raises(service.PostClosed):
        await service.claim_post(user=member, post_id=post.id)


async def test_staff_assign_and_remove_with_notices(db):
    community, staff = await _setup()
    post = await make_post(community, staff, capacity=2)
    member, _ = await make_member(community, staff)
    colleague, _ = await make_member(community, staff)
    outsider = await make_user(community=community)
    other_staff = await make_user(community=await make_community(), roles=["staff"])
    with pytest.raises(Forbidden):
        await service.assign_post(actor=other_staff, post_id=post.id, user_id=member.id)
    with pytest.raises(service.NotPartyMember):
        await service.assign_post(actor=staff, post_id=post.id, user_id=outsider.id)
    assignment = await service.assign_post(actor=staff, post_id=post.id, user_id=member.id)
    assert assignment.assigned_by_id == staff.id
    notice = await OutboxMessage.get(dedupe_key=f"party-assignment:{assignment.id}:on")
    assert notice.user_id == member.id and "绿化养护岗" in notice.context["title"]
    await service.claim_post(user=colleague, post_id=post.id)
    with pytest.raises(service.CapacityBelowTaken):
        await service.update_post(actor=staff, post_id=post.id, capacity=1)
    removed = await service.remove_assignment(
        actor=staff, assignment_id=assignment.id, reason="岗位调整"
    )
    assert removed.status == "removed" and removed.end_reason == "岗位调整"
    assert await OutboxMessage.exists(dedupe_key=f"party-assignment:{assignment.id}:off")
    assert (await ServicePost.get(id=post.id)).taken == 1
    with pytest.raises(service.AssignmentNotActive):
        await service.remove_assignment(actor=staff, assignment_id=assignment.id)
    updated = await service.update_post(actor=staff, post_id=post.id, capacity=3, title="新名称")
    assert updated.capacity == 3 and updated.title == "新名称"


async def test_post_list_suggests_posts_matching_the_members_skills(db):
    community, staff = await _setup()
    green = await make_post(community, staff, title="绿化养护岗", skills=["环境绿化"])
    law = await make_post(community, staff, title="法律咨询岗", skills=["法律咨询", "政策宣讲"])
    await make_post(community, staff, title="往年岗位", term=2025, skills=["法律咨询"])
    member, _ = await make_member(community, staff, skills=["法律咨询"])
    await service.claim_post(user=member, post_id=law.id)

    views, _ = await service.list_posts(
        viewer=member, page=PageRequest(), community_id=community.id
    )
    by_id = {v.post.id: v for v in views}
    assert set(by_id) == {green.id, law.id}  # this term only
    assert by_id[law.id].matched_skills == ["法律咨询"] and by_id[law.id].suggested
    assert by_id[law.id].held_by_me and by_id[law.id].seats_left == 1
    assert by_id[green.id].matched_skills == [] and not by_id[green.id].suggested
    anonymous, _ = await service.list_posts(
        viewer=None, page=PageRequest(), community_id=community.id
    )
    assert not any(v.suggested for v in anonymous)


async def test_approval_pays_the_report_in_rule_once_per_community(db):
    community, staff = await _setup()
    elsewhere = await make_community()
    staff_elsewhere = await make_user(community=elsewhere, roles=["staff"])
    boss = await make_user(roles=["street_admin"])
    await points_service.create_rule(actor=boss, event_type="report_in_approved", points=30)
    user, registration = await make_member(community, staff)
    assert (await User.get(id=user.id)).points_balance == 30

    # Rejected later, reports in again and is approved again: the same community pays once.
    await service.review_registration(
        actor=staff, registration_id=registration.id, approve=False, reason="信息有误"
    )
    again = await service.register(user=user, form=form(community))
    await service.review_registration(actor=staff, registration_id=again.id, approve=True)
    assert (await User.get(id=user.id)).points_balance == 30

    # Moving to another community is a new report-in there.
    moved = await service.register(user=user, form=form(elsewhere))
    await service.review_registration(actor=staff_elsewhere, registration_id=moved.id, approve=True)
    ledger = await PointsLedgerEntry.filter(user_id=user.id).order_by("id")
    assert [(e.source_type, e.source_id, e.delta) for e in ledger] == [
        ("party_report_in", str(community.id), 30),
        ("party_report_in", str(elsewhere.id), 30),
    ]
