"""在职党员报到: report-in, review, withdrawal and the roster.

An approved registration is what makes someone a party member of a community; the
`party_member` role grant mirrors it and changes in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import blind_index, encrypt_field
from backend.core.text import normalise_phone
from backend.orgs.models import Community
from backend.party.exceptions import AlreadyRegistered, NotReviewable
from backend.party.models import (
    ACTIVE_REGISTRATION_STATUSES,
    TIME_SLOTS,
    PartyRegistration,
    ServicePost,
)
from backend.party.posts import release_member_posts_in_tx
from backend.party.schemas import RegistrationIn, ReviewIn
from backend.party.views import PARTY_URL, RosterFilter
from backend.points import rules as points_rules

REPORT_IN_POINTS_SOURCE = "party_report_in"
ROSTER_EXPORT_LIMIT = 5000
PHONE_MESSAGE = "请输入 11 位大陆手机号"
_LANDLINE = re.compile(r"[0-9-]{7,20}")


def mobile(value: str | None, *, field: str = "phone") -> str:
    """The mainland mobile number in what a person typed (spaces, dashes, +86 and all);
    Invalid naming `field` otherwise. The report-in form checks its box with it too, so a
    short number reads the same message as a wrong one."""
    phone = normalise_phone(value)
    if phone is None:
        raise Invalid(fields={field: PHONE_MESSAGE})
    return phone


def _skills_text(skills: Iterable[str]) -> str:
    return "|" + "|".join(skills) + "|" if skills else ""


async def _checked(data: RegistrationIn) -> dict[str, Any]:
    """The columns of a registration; every problem the model could not see (the phone's
    format, the offered skills and times, the community and its posts) reported at once."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = data.model_dump(
        include={
            "name",
            "work_unit",
            "party_org",
            "party_org_contact",
            "address",
            "skills_note",
            "available_note",
        }
    )
    try:
        phone = mobile(data.phone)
    except Invalid as exc:
        errors.update(exc.fields or {})
    else:
        values["phone_encrypted"] = encrypt_field(phone)
        values["phone_index"] = blind_index(phone)
    org_phone = re.sub(r"\s", "", data.party_org_phone)
    if org_phone and not _LANDLINE.fullmatch(org_phone):
        errors["party_org_phone"] = "请填写党组织联系电话（数字或短横线）"
    values["party_org_phone_encrypted"] = encrypt_field(org_phone) if org_phone else None
    offered = get_settings().party_skills
    skills = list(dict.fromkeys(s for s in data.skills if s))
    if any(s not in offered for s in skills):
        errors["skills"] = "请从列表中选择特长，其他特长可填在补充说明里"
    values["skills"] = skills
    values["skills_text"] = _skills_text(skills)
    times = list(dict.fromkeys(data.available_times))
    if any(t not in TIME_SLOTS for t in times):
        errors["available_times"] = "请从列表中选择可服务时间"
    values["available_times"] = times
    if not await Community.exists(id=data.community_id):
        errors["community_id"] = "社区不存在"
    preferred = list(dict.fromkeys(data.preferred_post_ids))
    if preferred and await ServicePost.filter(
        id__in=preferred, community_id=data.community_id, kind="post"
    ).count() != len(preferred):
        errors["preferred_post_ids"] = "意向岗位须是所选社区的岗位"
    values["preferred_post_ids"] = preferred
    if errors:
        raise Invalid(fields=errors)
    return values


async def register(*, user: User, data: RegistrationIn) -> PartyRegistration:
    """Report in to a community: one active registration per person (unique key). Reporting
    in to another community ends the old registration, its posts and its role there."""
    values = await _checked(data)
    key = f"u{user.id}"
    now = clock.now()
    async with in_transaction():
        current = await PartyRegistration.filter(active_key=key).select_for_update().first()
        if current is not None:
            if current.community_id == data.community_id:
                raise AlreadyRegistered()
            community = await Community.get(id=data.community_id)
            ended = await _end_registration_in_tx(
                registration=current,
                status="ended",
                actor=None,
                reason=f"已转到{community.name}报到",
            )
            if not ended:
                raise AlreadyRegistered("报到信息刚刚发生变化，请刷新后再试")
        try:
            async with in_transaction():
                return await PartyRegistration.create(
                    user_id=user.id,
                    community_id=data.community_id,
                    status="pending",
                    active_key=key,
                    created_at=now,
                    **values,
                )
        except IntegrityError as exc:
            raise AlreadyRegistered() from exc


async def _end_registration_in_tx(
    *, registration: PartyRegistration, status: str, actor: User | None, reason: str
) -> bool:
    """End an active registration: its posts in that community freed, its role revoked."""
    now = clock.now()
    values: dict[str, Any] = {"status": status, "active_key": None, "ended_at": now}
    if status == "rejected":
        values.update(review_reason=reason, reviewed_by_id=actor.id if actor else None)
        values["reviewed_at"] = now
    else:
        values["end_reason"] = reason
    changed = await PartyRegistration.filter(
        id=registration.id, status__in=ACTIVE_REGISTRATION_STATUSES
    ).update(**values)
    if not changed:
        return False
    await release_member_posts_in_tx(
        user_id=registration.user_id,
        community_id=registration.community_id,
        actor=actor,
        reason=reason,
    )
    await accounts_service.revoke_role(
        actor=actor,
        user_id=registration.user_id,
        role="party_member",
        community_id=registration.community_id,
    )
    return True


async def get_registration(*, viewer: User, registration_id: int) -> PartyRegistration:
    """One registration, for its owner or staff of its community (NotFound otherwise)."""
    registration = (
        await PartyRegistration.get_or_none(id=registration_id)
        if may_exist(registration_id)
        else None
    )
    if registration is None:
        raise NotFound("报到信息不存在")
    if registration.user_id != viewer.id and not await accounts_service.is_staff_of(
        viewer, registration.community_id
    ):
        raise NotFound("报到信息不存在")
    return registration


async def my_registration(*, user: User) -> PartyRegistration | None:
    """The user's active registration, else their latest one, else None."""
    active = await PartyRegistration.get_or_none(active_key=f"u{user.id}")
    if active is not None:
        return active
    return await PartyRegistration.filter(user_id=user.id).order_by("-id").first()


async def _notify_registration(registration: PartyRegistration, *, approved: bool) -> None:
    community = await Community.get(id=registration.community_id)
    if approved:
        title, body = (
            "报到审核通过",
            f"您已成功报到到{community.name}，欢迎参与社区服务！可以去认领服务岗位了。",
        )
    else:
        title, body = (
            "报到未通过",
            f"您在{community.name}的报到未通过：{registration.review_reason or '请联系社区'}",
        )
    await enqueue(
        template_key="notice",
        context={
            "title": title,
            "body": body,
            "summary": body[:20],
            "publisher": community.name,
            "url": PARTY_URL,
            "page": "pages/party/index",
        },
        dedupe_key=f"party-review:{registration.id}:{registration.status}",
        user_id=registration.user_id,
    )


async def review_registration(
    *, actor: User, registration_id: int, data: ReviewIn
) -> PartyRegistration:
    """Approve a pending registration (the person becomes party_member of that community in
    the same transaction) or reject a pending or approved one with a reason (role revoked,
    posts there freed). Staff of the community or a street admin only."""
    registration = await get_registration(viewer=actor, registration_id=registration_id)
    await accounts_service.require_staff_of(actor, registration.community_id)
    approve, reason = data.approve, data.reason
    now = clock.now()
    async with in_transaction():
        if approve:
            changed = await PartyRegistration.filter(id=registration.id, status="pending").update(
                status="approved",
                reviewed_by_id=actor.id,
                reviewed_at=now,
                approved_at=now,
                review_reason=reason,
            )
            if not changed:
                raise NotReviewable()
            await accounts_service.grant_role(
                actor=actor,
                user_id=registration.user_id,
                role="party_member",
                community_id=registration.community_id,
            )
            # Once per person and community: re-registering after a move back pays nothing.
            await points_rules.award_by_rule_in_tx(
                user_id=registration.user_id,
                event_type="report_in_approved",
                source_type=REPORT_IN_POINTS_SOURCE,
                source_id=str(registration.community_id),
                occurred_at=now,
                actor_id=actor.id,
            )
        else:
            if not reason:
                raise Invalid("驳回时请说明原因", fields={"reason": "请填写驳回原因"})
            if not await _end_registration_in_tx(
                registration=registration, status="rejected", actor=actor, reason=reason
            ):
                raise NotReviewable()
        registration = await PartyRegistration.get(id=registration.id)
        await _notify_registration(registration, approved=approve)
    return registration


async def withdraw_registration(*, user: User) -> PartyRegistration:
    """End the user's own active registration (role and posts there released)."""
    async with in_transaction():
        current = (
            await PartyRegistration.filter(active_key=f"u{user.id}").select_for_update().first()
        )
        if current is None or not await _end_registration_in_tx(
            registration=current, status="ended", actor=None, reason="本人退出报到"
        ):
            raise NotFound("您当前没有报到信息")
        return await PartyRegistration.get(id=current.id)


async def _roster_queryset(actor: User, filters: RosterFilter) -> QuerySet[PartyRegistration]:
    if filters.community_id is not None:
        await accounts_service.require_staff_of(actor, filters.community_id)
        queryset = PartyRegistration.filter(community_id=filters.community_id)
    else:
        scope = await accounts_service.staff_community_ids(actor)
        if scope is not None and not scope:
            raise Forbidden("只有社区工作人员可以查看党员名册")
        queryset = (
            PartyRegistration.all()
            if scope is None
            else PartyRegistration.filter(community_id__in=scope)
        )
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.q and filters.q.strip():
        text = filters.q.strip()
        match = (
            Q(name__icontains=text) | Q(work_unit__icontains=text) | Q(party_org__icontains=text)
        )
        phone = normalise_phone(text)
        if phone:
            match |= Q(phone_index=blind_index(phone))
        queryset = queryset.filter(match)
    if filters.skill:
        queryset = queryset.filter(skills_text__contains=f"|{filters.skill}|")
    if filters.work_unit:
        queryset = queryset.filter(work_unit=filters.work_unit)
    return queryset


async def list_registrations(
    *, actor: User, page: PageRequest, filters: RosterFilter
) -> Page[PartyRegistration]:
    """The roster / approval queue within the actor's communities, newest first."""
    return await paginate(await _roster_queryset(actor, filters), page, descending=True)


async def roster_for_export(*, actor: User, filters: RosterFilter) -> list[PartyRegistration]:
    """Every registration the roster filter matches (for the Excel export), oldest first."""
    queryset = await _roster_queryset(actor, filters)
    return await queryset.order_by("community_id", "id").limit(ROSTER_EXPORT_LIMIT)


async def approved_members(*, actor: User, community_id: int) -> list[PartyRegistration]:
    """The community's approved party members by name (staff pick from them)."""
    await accounts_service.require_staff_of(actor, community_id)
    return await PartyRegistration.filter(community_id=community_id, status="approved").order_by(
        "name", "id"
    )
