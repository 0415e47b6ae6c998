"""The party service: report-in and review, roles, posts and their limits, who may do what."""

from __future__ import annotations

import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.models import OutboxMessage
from backend.core.pagination import PageRequest
from backend.party import exceptions, posts, registrations, views
from backend.party.models import PartyRegistration, PostAssignment, ServicePost
from backend.party.schemas import PostPatch, RemoveIn, ReviewIn
from backend.points.models import PointsLedgerEntry
from tests.factories import local, make_community, make_staff, make_street_admin, make_user
from tests.factories.party import make_member, make_post, registration_in
from tests.factories.points import make_rule


@pytest.fixture(autouse=True)
def _in_2026():
    clock.set(local(2026, 3, 2, 10, 0))


async def _setup():
    community = await make_community()
    staff = await make_staff(community)
    return community, staff


# --- report-in and review ---


async def test_report_in_is_pending_and_once_per_person(db):
    community, _ = await _setup()
    user = await make_user(community=community)
    registration = await registrations.register(user=user, data=registration_in(community))
    assert registration.status == "pending"
    assert registration.active_key == f"u{user.id}"
    assert views.registration_phone(registration) == "139****5678"
    assert registration.skills_text == "|文明劝导|法律咨询|"
    with pytest.raises(exceptions.AlreadyRegistered) as caught:
        await registrations.register(user=user, data=registration_in(community))
    assert caught.value.code == "already_registered"
    assert await PartyRegistration.filter(user_id=user.id).count() == 1


async def test_report_in_form_is_validated(db):
    community, _ = await _setup()
    user = await make_user(community=community)
    bad = {
        "name": " ",
        "phone": "12345",
        "skills": ["会飞"],
        "available_times": ["半夜"],
        "party_org_phone": "打电话",
        "community_id": community.id + 999,
    }
    # The model refuses what its fields say (a blank name, a short number), as a form does...
    with pytest.raises(Invalid) as caught:
        registration_in(community, **bad)
    assert set(caught.value.fields) == {"name", "phone"}
    # ...and the service, at once, everything that needs the settings or the database.
    typed = registration_in(community, **{**bad, "name": "李建国", "phone": "12345678901"})
    with pytest.raises(Invalid) as caught:
        await registrations.register(user=user, data=typed)
    assert set(caught.value.fields) == {
        "phone",
        "skills",
        "available_times",
        "party_org_phone",
        "community_id",
    }


async def test_preferred_posts_must_belong_to_the_community(db):
    community, staff = await _setup()
    other = await make_community()
    other_staff = await make_staff(other)
    mine = await make_post(community, staff)
    theirs = await make_post(other, other_staff)
    user = await make_user(community=community)
    with pytest.raises(Invalid) as caught:
        await registrations.register(
            user=user, data=registration_in(community, preferred_post_ids=[mine.id, theirs.id])
        )
    assert "preferred_post_ids" in caught.value.fields
    registration = await registrations.register(
        user=user, data=registration_in(community, preferred_post_ids=[mine.id])
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
    with pytest.raises(exceptions.NotReviewable):
        await registrations.review_registration(
            actor=staff, registration_id=registration.id, data=ReviewIn(approve=True)
        )


async def test_rejection_needs_a_reason_and_leaves_no_role(db):
    community, staff = await _setup()
    user = await make_user(community=community)
    # A stale grant (e.g. made by hand) does not survive a rejection in that community.
    await accounts_service.grant_role(
        actor=None, user_id=user.id, role="party_member", community_id=community.id
    )
    registration = await registrations.register(user=user, data=registration_in(community))
    with pytest.raises(Invalid):
        await registrations.review_registration(
            actor=staff, registration_id=registration.id, data=ReviewIn(approve=False)
        )
    rejected = await registrations.review_registration(
        actor=staff,
        registration_id=registration.id,
        data=ReviewIn(approve=False, reason="非本社区居民"),
    )
    assert rejected.status == "rejected" and rejected.active_key is None
    assert rejected.review_reason == "非本社区居民"
    assert not await accounts_service.has_role(user, "party_member", community.id)
    notice = await OutboxMessage.get(dedupe_key=f"party-review:{registration.id}:rejected")
    assert "非本社区居民" in notice.context["body"]
    # Rejected: a new report-in is possible.
    again = await registrations.register(user=user, data=registration_in(community))
    assert again.status == "pending"


async def test_rejecting_an_approved_member_takes_the_role_and_the_post(db):
    community, staff = await _setup()
    user, registration = await make_member(community, staff)
    post = await make_post(community, staff)
    await posts.claim_post(user=user, post_id=post.id)
    await registrations.review_registration(
        actor=staff,
        registration_id=registration.id,
        data=ReviewIn(approve=False, reason="已迁出本社区"),
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
    await posts.claim_post(user=user, post_id=post.id)

    second = await registrations.register(user=user, data=registration_in(new))

    first = await PartyRegistration.get(id=first.id)
    assert first.status == "ended" and first.active_key is None
    assert new.name in first.end_reason
    assert second.status == "pending" and second.active_key == f"u{user.id}"
    assert not await accounts_service.has_role(user, "party_member", old.id)
    assert (await ServicePost.get(id=post.id)).taken == 0
    await registrations.review_registration(
        actor=new_staff, registration_id=second.id, data=ReviewIn(approve=True)
    )
    assert await accounts_service.has_role(user, "party_member", new.id)
    assert not await accounts_service.has_role(user, "party_member", old.id)
    assert (await registrations.my_registration(user=user)).id == second.id


async def test_withdrawing_ends_the_registration(db):
    community, staff = await _setup()
    user, _registration = await make_member(community, staff)
    ended = await registrations.withdraw_registration(user=user)
    assert ended.status == "ended"
    assert not await accounts_service.has_role(user, "party_member", community.id)
    with pytest.raises(NotFound):
        await registrations.withdraw_registration(user=user)


async def test_only_staff_of_that_community_review_and_see_the_roster(db):
    community, _staff = await _setup()
    other = await make_community()
    other_staff = await make_staff(other)
    admin = await make_street_admin()
    resident = await make_user(community=community)
    user = await make_user(community=community)
    registration = await registrations.register(user=user, data=registration_in(community))
    for outsider in (other_staff, resident):
        with pytest.raises(NotFound):
            await registrations.review_registration(
                actor=outsider, registration_id=registration.id, data=ReviewIn(approve=True)
            )
    # The applicant sees their own registration but cannot approve it.
    with pytest.raises(Forbidden):
        await registrations.review_registration(
            actor=user, registration_id=registration.id, data=ReviewIn(approve=True)
        )
    page = PageRequest()
    everything = views.RosterFilter()
    seen = await registrations.list_registrations(actor=other_staff, page=page, filters=everything)
    assert seen.items == []
    with pytest.raises(Forbidden):
        await registrations.list_registrations(
            actor=other_staff, page=page, filters=views.RosterFilter(community_id=community.id)
        )
    with pytest.raises(Forbidden):
        await registrations.list_registrations(
            actor=resident, page=page, filters=views.RosterFilter()
        )
    seen = await registrations.list_registrations(actor=admin, page=page, filters=everything)
    assert [r.id for r in seen.items] == [registration.id]
    approved = await registrations.review_registration(
        actor=admin, registration_id=registration.id, data=ReviewIn(approve=True)
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
    await registrations.register(user=pending_user, data=registration_in(community, name="王五"))

    async def names(**filters) -> list[str]:
        result = await registrations.list_registrations(
            actor=staff, page=PageRequest(), filters=views.RosterFilter(**filters)
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
    other_staff = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await make_post(community, other_staff)
    # The model refuses a blank title and a term out of range, the service a post (not a
    # task) without a place.
    with pytest.raises(Invalid) as caught:
        await make_post(community, staff, capacity=0, title="", term=1999)
    assert set(caught.value.fields) == {"title", "term"}
    with pytest.raises(Invalid) as caught:
        await make_post(community, staff, capacity=0)
    assert set(caught.value.fields) == {"capacity"}
    task = await make_post(community, staff, capacity=0, kind="task", title="社区大扫除")
    assert task.kind == "task" and task.capacity == 0


async def test_claim_needs_an_approved_registration_in_that_community(db):
    community, staff = await _setup()
    post = await make_post(community, staff)
    resident = await make_user(community=community)
    with pytest.raises(exceptions.NotPartyMember) as caught:
        await posts.claim_post(user=resident, post_id=post.id)
    assert caught.value.code == "not_party_member" and caught.value.status_code == 403
    await registrations.register(user=resident, data=registration_in(community))
    with pytest.raises(exceptions.NotPartyMember):  # still pending
        await posts.claim_post(user=resident, post_id=post.id)
    other, other_staff = await _setup()
    member, _ = await make_member(other, other_staff)
    with pytest.raises(exceptions.NotPartyMember):  # a member of another community
        await posts.claim_post(user=member, post_id=post.id)


async def test_capacity_and_one_post_per_term(db):
    community, staff = await _setup()
    post = await make_post(community, staff, capacity=1)
    second_post = await make_post(community, staff, title="六乱监督岗")
    next_year = await make_post(community, staff, term=2027, title="垃圾分类指导岗")
    alice, _ = await make_member(community, staff)
    bob, _ = await make_member(community, staff)

    assignment = await posts.claim_post(user=alice, post_id=post.id)
    assert assignment.status == "active" and assignment.term_key == f"{alice.id}:2026"
    with pytest.raises(exceptions.PostFull) as full:
        await posts.claim_post(user=bob, post_id=post.id)
    assert full.value.code == "post_full"
    with pytest.raises(exceptions.AlreadyHasPost) as twice:
        await posts.claim_post(user=alice, post_id=second_post.id)
    assert twice.value.code == "already_has_post"
    with pytest.raises(exceptions.AlreadyHasPost):
        await posts.claim_post(user=alice, post_id=post.id)
    assert (await posts.claim_post(user=alice, post_id=next_year.id)).term == 2027
    assert (await ServicePost.get(id=post.id)).taken == 1
    assert (await ServicePost.get(id=second_post.id)).taken == 0

    released = await posts.release_post(user=alice, post_id=post.id)
    assert released.status == "released" and released.term_key is None
    assert (await ServicePost.get(id=post.id)).taken == 0
    with pytest.raises(exceptions.AssignmentNotActive):
        await posts.release_post(user=alice, post_id=post.id)
    await posts.claim_post(user=bob, post_id=post.id)
    await posts.claim_post(user=alice, post_id=second_post.id)


async def test_a_task_is_not_claimed_and_a_closed_post_takes_nobody(db):
    community, staff = await _setup()
    member, _ = await make_member(community, staff)
    task = await make_post(community, staff, kind="task", capacity=0)
    with pytest.raises(exceptions.NotClaimable):
        await posts.claim_post(user=member, post_id=task.id)
    post = await make_post(community, staff)
    await posts.update_post(actor=staff, post_id=post.id, data=PostPatch(status="closed"))
    with pytest.raises(exceptions.PostClosed):
        await posts.claim_post(user=member, post_id=post.id)


async def test_staff_assign_and_remove_with_notices(db):
    community, staff = await _setup()
    post = await make_post(community, staff, capacity=2)
    member, _ = await make_member(community, staff)
    colleague, _ = await make_member(community, staff)
    outsider = await make_user(community=community)
    other_staff = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await posts.assign_post(actor=other_staff, post_id=post.id, user_id=member.id)
    with pytest.raises(exceptions.NotPartyMember):
        await posts.assign_post(actor=staff, post_id=post.id, user_id=outsider.id)
    assignment = await posts.assign_post(actor=staff, post_id=post.id, user_id=member.id)
    assert assignment.assigned_by_id == staff.id
    notice = await OutboxMessage.get(dedupe_key=f"party-assignment:{assignment.id}:on")
    assert notice.user_id == member.id and "绿化养护岗" in notice.context["title"]
    await posts.claim_post(user=colleague, post_id=post.id)
    with pytest.raises(exceptions.CapacityBelowTaken):
        await posts.update_post(actor=staff, post_id=post.id, data=PostPatch(capacity=1))
    removed = await posts.remove_assignment(
        actor=staff, assignment_id=assignment.id, data=RemoveIn(reason="岗位调整")
    )
    assert removed.status == "removed" and removed.end_reason == "岗位调整"
    assert await OutboxMessage.exists(dedupe_key=f"party-assignment:{assignment.id}:off")
    assert (await ServicePost.get(id=post.id)).taken == 1
    with pytest.raises(exceptions.AssignmentNotActive):
        await posts.remove_assignment(actor=staff, assignment_id=assignment.id, data=RemoveIn())
    updated = await posts.update_post(
        actor=staff, post_id=post.id, data=PostPatch(capacity=3, title="新名称")
    )
    assert updated.capacity == 3 and updated.title == "新名称"


async def test_post_list_suggests_posts_matching_the_members_skills(db):
    community, staff = await _setup()
    green = await make_post(community, staff, title="绿化养护岗", skills=["环境绿化"])
    law = await make_post(community, staff, title="法律咨询岗", skills=["法律咨询", "政策宣讲"])
    await make_post(community, staff, title="往年岗位", term=2025, skills=["法律咨询"])
    member, _ = await make_member(community, staff, skills=["法律咨询"])
    await posts.claim_post(user=member, post_id=law.id)

    views, _ = await posts.list_posts(viewer=member, page=PageRequest(), community_id=community.id)
    by_id = {v.post.id: v for v in views}
    assert set(by_id) == {green.id, law.id}  # this term only
    assert by_id[law.id].matched_skills == ["法律咨询"] and by_id[law.id].suggested
    assert by_id[law.id].held_by_me and by_id[law.id].seats_left == 1
    assert by_id[green.id].matched_skills == [] and not by_id[green.id].suggested
    anonymous, _ = await posts.list_posts(
        viewer=None, page=PageRequest(), community_id=community.id
    )
    assert not any(v.suggested for v in anonymous)


async def test_approval_pays_the_report_in_rule_once_per_community(db):
    community, staff = await _setup()
    elsewhere = await make_community()
    staff_elsewhere = await make_staff(elsewhere)
    boss = await make_street_admin()
    await make_rule(actor=boss, event_type="report_in_approved", points=30)
    user, registration = await make_member(community, staff)
    assert (await User.get(id=user.id)).points_balance == 30

    # Rejected later, reports in again and is approved again: the same community pays once.
    await registrations.review_registration(
        actor=staff,
        registration_id=registration.id,
        data=ReviewIn(approve=False, reason="信息有误"),
    )
    again = await registrations.register(user=user, data=registration_in(community))
    await registrations.review_registration(
        actor=staff, registration_id=again.id, data=ReviewIn(approve=True)
    )
    assert (await User.get(id=user.id)).points_balance == 30

    # Moving to another community is a new report-in there.
    moved = await registrations.register(user=user, data=registration_in(elsewhere))
    await registrations.review_registration(
        actor=staff_elsewhere, registration_id=moved.id, data=ReviewIn(approve=True)
    )
    ledger = await PointsLedgerEntry.filter(user_id=user.id).order_by("id")
    assert [(e.source_type, e.source_id, e.delta) for e in ledger] == [
        ("party_report_in", str(community.id), 30),
        ("party_report_in", str(elsewhere.id), 30),
    ]
