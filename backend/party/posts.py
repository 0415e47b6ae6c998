"""Service posts and community tasks, and who holds them: staff set posts up, members claim
one per term (within capacity), staff assign and remove, members release.

A claim locks the member's registration row first and the post row second (rejection and
moving do the same), so a claim racing a rejection cannot leave a post held by a non-member."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import unguarded as unguarded_switch
from backend.core.clock import clock
from backend.core.errors import Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.outbox import enqueue
from backend.core.pagination import PageRequest, paginate
from backend.orgs.models import Community
from backend.party import unguarded
from backend.party.exceptions import (
    AlreadyHasPost,
    AssignmentNotActive,
    CapacityBelowTaken,
    NotClaimable,
    NotPartyMember,
    PostClosed,
    PostFull,
)
from backend.party.hours import current_term
from backend.party.models import PartyRegistration, PostAssignment, ServicePost
from backend.party.schemas import PostIn, PostPatch, RemoveIn
from backend.party.views import PARTY_URL, PostView


def _check_capacity(errors: dict[str, str], kind: str, capacity: int) -> None:
    if kind == "post" and capacity < 1:
        errors["capacity"] = "岗位至少要有 1 个名额"


def _check_hours(errors: dict[str, str], open_from: int, open_until: int) -> None:
    # Each bound is the model's; their order may also involve the stored other bound.
    if open_from >= open_until:
        errors["open_until"] = "服务结束时间须晚于开始时间"


def _skills(skills: list[str]) -> list[str]:
    return list(dict.fromkeys(s for s in skills if s))


async def create_post(*, actor: User, data: PostIn) -> ServicePost:
    """A post (capacity ≥ 1) or community task for a community and term, with its service
    hours (QR check-in only then); its staff only."""
    if not await Community.exists(id=data.community_id):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, data.community_id)
    errors: dict[str, str] = {}
    _check_capacity(errors, data.kind, data.capacity)
    _check_hours(errors, data.open_from, data.open_until)
    if errors:
        raise Invalid(fields=errors)
    async with in_transaction():
        return await ServicePost.create(
            community_id=data.community_id,
            term=data.term,
            kind=data.kind,
            title=data.title,
            description=data.description,
            location=data.location,
            skills=_skills(data.skills),
            capacity=data.capacity if data.kind == "post" else 0,
            open_from=data.open_from,
            open_until=data.open_until,
            created_by_id=actor.id,
            created_at=clock.now(),
        )


async def get_post(*, post_id: int) -> ServicePost:
    """One post or task (NotFound when there is none)."""
    post = await ServicePost.get_or_none(id=post_id) if may_exist(post_id) else None
    if post is None:
        raise NotFound("岗位不存在")
    return post


async def get_post_for_staff(*, actor: User, post_id: int) -> ServicePost:
    """One post, for staff of its community."""
    post = await get_post(post_id=post_id)
    await accounts_service.require_staff_of(actor, post.community_id)
    return post


async def update_post(*, actor: User, post_id: int, data: PostPatch) -> ServicePost:
    """Change a post (the fields given); capacity never below the current holders (one
    guarded UPDATE)."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = data.model_dump(
        include={"title", "description", "location", "status"}, exclude_none=True
    )
    if data.skills is not None:
        values["skills"] = _skills(data.skills)
    if data.capacity is not None:
        _check_capacity(errors, post.kind, data.capacity)
        if post.kind == "post":
            values["capacity"] = data.capacity
    if data.open_from is not None or data.open_until is not None:
        values["open_from"] = post.open_from if data.open_from is None else data.open_from
        values["open_until"] = post.open_until if data.open_until is None else data.open_until
        _check_hours(errors, values["open_from"], values["open_until"])
    if errors:
        raise Invalid(fields=errors)
    async with in_transaction():
        if values:
            guarded = ServicePost.filter(id=post.id)
            if "capacity" in values:
                guarded = guarded.filter(taken__lte=values["capacity"])
            if not await guarded.update(**values):
                raise CapacityBelowTaken()
    return await ServicePost.get(id=post.id)


async def _views(viewer: User | None, posts: list[ServicePost]) -> list[PostView]:
    skills: set[str] = set()
    held: set[int] = set()
    if viewer is not None:
        registration = await PartyRegistration.get_or_none(active_key=f"u{viewer.id}")
        skills = set(registration.skills) if registration else set()
        held = set(
            await PostAssignment.filter(user_id=viewer.id, status="active").values_list(
                "post_id", flat=True
            )
        )
    return [
        PostView(
            post=post,
            matched_skills=[s for s in post.skills if s in skills],
            held_by_me=post.id in held,
        )
        for post in posts
    ]


async def view_post(*, viewer: User | None, post_id: int) -> PostView:
    """One post as `viewer` sees it (matching skills, whether they hold it)."""
    return (await _views(viewer, [await get_post(post_id=post_id)]))[0]


async def list_posts(
    *,
    viewer: User | None,
    page: PageRequest,
    community_id: int | None = None,
    term: int | None = None,
    kind: str | None = None,
    include_closed: bool = False,
) -> tuple[list[PostView], str | None]:
    """Posts (default: this term), each marked with the viewer's matching skills (from their
    active registration) so the list can suggest what fits."""
    queryset = ServicePost.filter(term=term or current_term())
    if community_id is not None:
        queryset = queryset.filter(community_id=community_id)
    if kind is not None:
        queryset = queryset.filter(kind=kind)
    if not include_closed:
        queryset = queryset.filter(status="active")
    result = await paginate(queryset, page)
    return await _views(viewer, result.items), result.next_cursor


async def _take_seat_in_tx(post: ServicePost) -> None:
    changed = await ServicePost.filter(id=post.id, status="active", taken__lt=F("capacity")).update(
        taken=F("taken") + 1
    )
    if not changed:
        if await ServicePost.exists(id=post.id, status="active"):
            raise PostFull()
        raise PostClosed()


async def _take_post_in_tx(
    *, post: ServicePost, user_id: int, assigned_by: User | None
) -> PostAssignment:
    if post.kind != "post":
        raise NotClaimable()
    if unguarded_switch.enabled("post_claim"):
        return await unguarded.take_post_in_tx(post=post, user_id=user_id, assigned_by=assigned_by)
    # Locks the member's registration: a rejection or move of this member waits for us,
    # and so does their next claim.
    registration = (
        await PartyRegistration.filter(
            active_key=f"u{user_id}", community_id=post.community_id, status="approved"
        )
        .select_for_update()
        .first()
    )
    if registration is None:
        if assigned_by is not None:
            raise NotPartyMember("该居民不是本社区已报到的党员，不能分配岗位")
        raise NotPartyMember()
    term_key = f"{user_id}:{post.term}"
    if await PostAssignment.exists(term_key=term_key):
        raise AlreadyHasPost()
    await _take_seat_in_tx(post)
    try:
        async with in_transaction():
            return await PostAssignment.create(
                post_id=post.id,
                user_id=user_id,
                community_id=post.community_id,
                term=post.term,
                status="active",
                term_key=term_key,
                assigned_by_id=assigned_by.id if assigned_by else None,
                started_at=clock.now(),
            )
    except IntegrityError as exc:
        raise AlreadyHasPost() from exc


async def claim_post(*, user: User, post_id: int) -> PostAssignment:
    """Claim a post: an approved member of its community, within capacity (one guarded
    UPDATE), one post per member per term (unique key)."""
    post = await get_post(post_id=post_id)
    async with in_transaction():
        return await _take_post_in_tx(post=post, user_id=user.id, assigned_by=None)


async def assign_post(*, actor: User, post_id: int, user_id: int) -> PostAssignment:
    """Staff put an approved member on a post (same rules as a claim); the member is told."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    async with in_transaction():
        assignment = await _take_post_in_tx(post=post, user_id=user_id, assigned_by=actor)
        await _notify_assignment(post, assignment, assigned=True)
    return assignment


async def _notify_assignment(
    post: ServicePost, assignment: PostAssignment, *, assigned: bool
) -> None:
    if assigned:
        title = f"您已被安排到「{post.title}」"
        body = (
            f"社区工作人员为您安排了 {post.term} 年度服务岗位「{post.title}」，服务时请扫码签到。"
        )
    else:
        title = f"您已不在「{post.title}」岗位"
        body = f"您的服务岗位「{post.title}」已被调整：{assignment.end_reason or '请联系社区'}"
    await enqueue(
        template_key="notice",
        context={"title": title, "body": body, "summary": title[:20], "url": PARTY_URL + "/posts"},
        dedupe_key=f"party-assignment:{assignment.id}:{'on' if assigned else 'off'}",
        user_id=assignment.user_id,
    )


async def _end_assignment_in_tx(
    *, assignment_id: int, post_id: int, status: str, actor: User | None, reason: str
) -> bool:
    changed = await PostAssignment.filter(id=assignment_id, status="active").update(
        status=status,
        term_key=None,
        ended_at=clock.now(),
        ended_by_id=actor.id if actor else None,
        end_reason=reason,
    )
    if changed:
        await ServicePost.filter(id=post_id, taken__gt=0).update(taken=F("taken") - 1)
    return bool(changed)


async def release_member_posts_in_tx(
    *, user_id: int, community_id: int, actor: User | None, reason: str
) -> None:
    active = await PostAssignment.filter(
        user_id=user_id, community_id=community_id, status="active"
    ).values_list("id", "post_id")
    for assignment_id, post_id in active:
        await _end_assignment_in_tx(
            assignment_id=assignment_id,
            post_id=post_id,
            status="removed",
            actor=actor,
            reason=reason,
        )


async def release_post(*, user: User, post_id: int) -> PostAssignment:
    """Give up one's own post: the place goes back to the post."""
    async with in_transaction():
        assignment = await PostAssignment.get_or_none(
            user_id=user.id, post_id=post_id, status="active"
        )
        if assignment is None or not await _end_assignment_in_tx(
            assignment_id=assignment.id,
            post_id=assignment.post_id,
            status="released",
            actor=user,
            reason="本人退出岗位",
        ):
            raise AssignmentNotActive("您没有认领这个岗位")
        return await PostAssignment.get(id=assignment.id)


async def remove_assignment(*, actor: User, assignment_id: int, data: RemoveIn) -> PostAssignment:
    """Staff take a member off a post (the place is freed, the member is told)."""
    assignment = (
        await PostAssignment.get_or_none(id=assignment_id) if may_exist(assignment_id) else None
    )
    if assignment is None:
        raise NotFound("岗位认领记录不存在")
    await accounts_service.require_staff_of(actor, assignment.community_id)
    reason = data.reason or "社区工作人员调整岗位"
    async with in_transaction():
        if not await _end_assignment_in_tx(
            assignment_id=assignment.id,
            post_id=assignment.post_id,
            status="removed",
            actor=actor,
            reason=reason,
        ):
            raise AssignmentNotActive()
        assignment = await PostAssignment.get(id=assignment.id)
        post = await ServicePost.get(id=assignment.post_id)
        await _notify_assignment(post, assignment, assigned=False)
    return assignment


async def list_assignments(*, actor: User, post_id: int) -> list[PostAssignment]:
    """A post's holders (active first, then past), for staff of its community."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    rows = await PostAssignment.filter(post_id=post.id).order_by("id")
    return sorted(rows, key=lambda a: a.status != "active")


async def my_assignments(*, user: User) -> list[PostAssignment]:
    """The user's posts, current first."""
    rows = await PostAssignment.filter(user_id=user.id).order_by("-id").limit(50)
    return sorted(rows, key=lambda a: a.status != "active")
