"""在职党员报到: report-in and review, service posts, QR check-in, service hours, 双报到 report.

An approved registration is what makes someone a party member of a community; the
`party_member` role grant mirrors it and changes in the same transaction. Claims lock
the member's registration row first and the post row second (rejection and moving do
the same), so a claim racing a rejection cannot leave a post held by a non-member.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import checkin
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import blind_index, decrypt_field, encrypt_field, mask_phone
from backend.core.text import check_date, clean_text
from backend.orgs.models import Community
from backend.party.models import (
    ACTIVE_REGISTRATION_STATUSES,
    REGISTRATION_STATUS_NAMES,
    TIME_SLOTS,
    PartyRegistration,
    PostAssignment,
    ServicePost,
    ServiceRecord,
    ServiceRecordAudit,
    ServiceRecordDay,
)
from backend.points import service as points_service

log = logging.getLogger("linli.party")

POINTS_SOURCE = "party_service"
REPORT_IN_POINTS_SOURCE = "party_report_in"
PARTY_URL = "/h5/party"
MAX_SKILLS = 12
MAX_PREFERRED_POSTS = 5
MAX_CAPACITY = 1000
MIN_TERM, MAX_TERM = 2000, 2100
MINUTES_PER_DAY = 1440
# As the model's defaults: a post serves 07:00–21:00 unless its staff say otherwise.
DEFAULT_OPEN_FROM, DEFAULT_OPEN_UNTIL = 7 * 60, 21 * 60
ROSTER_EXPORT_LIMIT = 5000

_PHONE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"[0-9-]{7,20}")


# --- errors ---


class AlreadyRegistered(Conflict):
    code = "already_registered"
    message = "您已在该社区报到，请勿重复提交"


class NotReviewable(Conflict):
    code = "registration_not_reviewable"
    message = "该报到申请已处理，无需重复审核"


class NotPartyMember(Forbidden):
    code = "not_party_member"
    message = "报到审核通过后才能认领岗位和记录服务"


class PostFull(Conflict):
    code = "post_full"
    message = "该岗位名额已满"


class AlreadyHasPost(Conflict):
    code = "already_has_post"
    message = "本年度您已认领一个岗位，每人每年度限认领一个"


class PostClosed(Conflict):
    code = "post_closed"
    message = "该岗位已停止认领"


class NotClaimable(Conflict):
    code = "post_not_claimable"
    message = "社区任务无需认领，服务时直接扫码签到即可"


class CapacityBelowTaken(Conflict):
    code = "capacity_below_taken"
    message = "名额不能少于已认领的人数"


class AssignmentNotActive(Conflict):
    code = "assignment_not_active"
    message = "该岗位认领已结束"


# Check-in codes are one mechanism for activities and service posts, and so are their errors.
CheckinCodeInvalid = checkin.CheckinCodeInvalid
CheckinLocked = checkin.CheckinLocked


class PostOffHours(Conflict):
    code = "post_off_hours"
    message = "现在不在本岗位的服务时间内"


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"
    message = "您已签到，请先签退再重新签到"


class NotCheckedIn(Conflict):
    code = "not_checked_in"
    message = "您没有在这个岗位签到，无法签退"


class NotYourPost(Forbidden):
    code = "not_post_holder"
    message = "您没有认领这个岗位，请先认领后再签到"


# --- small helpers ---


def _tz() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def local_today() -> date:
    """Today's date where the street is (Asia/Shanghai)."""
    return clock.now().astimezone(_tz()).date()


def current_term() -> int:
    """The service term (year) of today."""
    return local_today().year


def day_start(day: date) -> datetime:
    """The UTC moment local midnight of `day` begins."""
    return datetime.combine(day, time(0), tzinfo=_tz()).astimezone(UTC)


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment as local time text, e.g. 2026-03-01 09:30."""
    return moment.astimezone(_tz()).strftime(fmt) if moment else ""


def status_name(status: str) -> str:
    return REGISTRATION_STATUS_NAMES.get(status, status)


def _text(
    errors: dict[str, str],
    name: str,
    value: Any,
    *,
    label: str,
    max_length: int,
    required: bool,
    multiline: bool = False,
) -> str:
    # Every field's problem is reported at once, so the form can mark them all.
    if value is not None and not isinstance(value, str):
        errors[name] = f"{label}格式不正确"
        return ""
    try:
        return clean_text(
            value,
            field=name,
            label=label,
            min_length=1 if required else 0,
            max_length=max_length,
            multiline=multiline,
        )
    except Invalid as exc:
        errors.update(exc.fields or {})
        return ""


def _mobile(raw: str) -> str | None:
    phone = re.sub(r"[\s-]", "", raw or "").removeprefix("+86")
    return phone if _PHONE.fullmatch(phone) else None


def _skills_text(skills: Iterable[str]) -> str:
    return "|" + "|".join(skills) + "|" if skills else ""


def hours(minutes: int) -> float:
    """Minutes as hours with one decimal, as shown to people."""
    return round(minutes / 60, 1)


def clock_text(minutes: int) -> str:
    """Minutes after local midnight as HH:MM (1440 is 24:00)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def opening_hours(post: ServicePost) -> str:
    """A post's service hours as shown to people, e.g. 07:00–21:00."""
    return f"{clock_text(post.open_from)}–{clock_text(post.open_until)}"


def _check_hours(errors: dict[str, str], open_from: Any, open_until: Any) -> None:
    from_ok = isinstance(open_from, int) and 0 <= open_from < MINUTES_PER_DAY
    until_ok = isinstance(open_until, int) and 0 < open_until <= MINUTES_PER_DAY
    if not from_ok:
        errors["open_from"] = "服务开始时间须在 00:00 到 23:59 之间"
    if not until_ok:
        errors["open_until"] = "服务结束时间须在 00:01 到 24:00 之间"
    elif from_ok and open_from >= open_until:
        errors["open_until"] = "服务结束时间须晚于开始时间"


def post_subject(post_id: int) -> str:
    """The subject of a post's rotating check-in code (backend.core.checkin)."""
    return f"post:{post_id}"


# --- report-in (报到) ---


@dataclass
class RegistrationForm:
    """What a party member fills in to report in."""

    name: str
    phone: str
    work_unit: str
    party_org: str
    community_id: int
    party_org_contact: str = ""
    party_org_phone: str = ""
    address: str = ""
    skills: list[str] = field(default_factory=list)
    skills_note: str = ""
    preferred_post_ids: list[int] = field(default_factory=list)
    available_times: list[str] = field(default_factory=list)
    available_note: str = ""


async def _clean_form(form: RegistrationForm) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "name": _text(errors, "name", form.name, label="姓名", max_length=32, required=True),
        "work_unit": _text(
            errors, "work_unit", form.work_unit, label="工作单位", max_length=64, required=True
        ),
        "party_org": _text(
            errors, "party_org", form.party_org, label="所在党组织", max_length=64, required=True
        ),
        "party_org_contact": _text(
            errors,
            "party_org_contact",
            form.party_org_contact,
            label="党组织联系人",
            max_length=32,
            required=False,
        ),
        "address": _text(
            errors, "address", form.address, label="居住楼栋", max_length=64, required=False
        ),
        "skills_note": _text(
            errors,
            "skills_note",
            form.skills_note,
            label="其他特长",
            max_length=128,
            required=False,
        ),
        "available_note": _text(
            errors,
            "available_note",
            form.available_note,
            label="服务时间说明",
            max_length=128,
            required=False,
        ),
    }
    phone = _mobile(form.phone)
    if phone is None:
        errors["phone"] = "请输入 11 位大陆手机号"
    else:
        values["phone_encrypted"] = encrypt_field(phone)
        values["phone_index"] = blind_index(phone)
    org_phone = re.sub(r"\s", "", form.party_org_phone or "")
    if org_phone and not _LANDLINE.fullmatch(org_phone):
        errors["party_org_phone"] = "请填写党组织联系电话（数字或短横线）"
    values["party_org_phone_encrypted"] = encrypt_field(org_phone) if org_phone else None
    offered = get_settings().party_skills
    skills = list(dict.fromkeys(s.strip() for s in form.skills if s and s.strip()))
    if len(skills) > MAX_SKILLS or any(s not in offered for s in skills):
        errors["skills"] = "请从列表中选择特长，其他特长可填在补充说明里"
    values["skills"] = skills
    values["skills_text"] = _skills_text(skills)
    times = list(dict.fromkeys(form.available_times))
    if any(t not in TIME_SLOTS for t in times):
        errors["available_times"] = "请从列表中选择可服务时间"
    values["available_times"] = times
    if not (may_exist(form.community_id) and await Community.exists(id=form.community_id)):
        errors["community_id"] = "社区不存在"
    preferred = list(dict.fromkeys(form.preferred_post_ids))
    if len(preferred) > MAX_PREFERRED_POSTS:
        errors["preferred_post_ids"] = f"意向岗位最多选 {MAX_PREFERRED_POSTS} 个"
    elif preferred and (
        not all(may_exist(p) for p in preferred)
        or await ServicePost.filter(
            id__in=preferred, community_id=form.community_id, kind="post"
        ).count()
        != len(preferred)
    ):
        errors["preferred_post_ids"] = "意向岗位须是所选社区的岗位"
    values["preferred_post_ids"] = preferred
    if errors:
        raise Invalid(fields=errors)
    return values


async def register(*, user: User, form: RegistrationForm) -> PartyRegistration:
    """Report in to a community: one active registration per person (unique key). Reporting
    in to another community ends the old registration, its posts and its role there."""
    values = await _clean_form(form)
    key = f"u{user.id}"
    now = clock.now()
    async with in_transaction():
        current = await PartyRegistration.filter(active_key=key).select_for_update().first()
        if current is not None:
            if current.community_id == form.community_id:
                raise AlreadyRegistered()
            community = await Community.get(id=form.community_id)
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
                    community_id=form.community_id,
                    status="pending",
                    active_key=key,
                    created_at=now,
                    **values,
                )
        except IntegrityError as exc:
            raise AlreadyRegistered() from exc


async def _release_member_posts_in_tx(
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
    await _release_member_posts_in_tx(
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
    *, actor: User, registration_id: int, approve: bool, reason: str = ""
) -> PartyRegistration:
    """Approve a pending registration (the person becomes party_member of that community in
    the same transaction) or reject a pending or approved one with a reason (role revoked,
    posts there freed). Staff of the community or a street admin only."""
    registration = await get_registration(viewer=actor, registration_id=registration_id)
    await accounts_service.require_staff_of(actor, registration.community_id)
    reason = clean_text(reason, field="reason", label="驳回原因", max_length=200)
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
            await points_service.award_by_rule_in_tx(
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


@dataclass(frozen=True)
class RosterFilter:
    """Roster search: community, status, a name/unit text or phone, a skill, a work unit."""

    community_id: int | None = None
    status: str | None = None
    q: str | None = None
    skill: str | None = None
    work_unit: str | None = None


async def _roster_queryset(actor: User, filters: RosterFilter):
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
        phone = _mobile(text)
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


def registration_phone(registration: PartyRegistration) -> str | None:
    """The registration's phone masked (138****1234)."""
    return mask_phone(decrypt_field(registration.phone_encrypted))


def registration_org_phone(registration: PartyRegistration) -> str | None:
    return mask_phone(decrypt_field(registration.party_org_phone_encrypted))


async def community_names(ids: Iterable[int]) -> dict[int, str]:
    """Community id → name for the ids given."""
    wanted = {i for i in ids if i is not None}
    rows = await Community.filter(id__in=wanted).values_list("id", "name") if wanted else []
    return dict(rows)


async def approved_members(*, actor: User, community_id: int) -> list[PartyRegistration]:
    """The community's approved party members by name (staff pick from them)."""
    await accounts_service.require_staff_of(actor, community_id)
    return await PartyRegistration.filter(community_id=community_id, status="approved").order_by(
        "name", "id"
    )


# --- service posts ---


@dataclass
class PostForm:
    """A post or task as staff define it."""

    community_id: int
    title: str
    term: int
    capacity: int = 0
    description: str = ""
    location: str = ""
    skills: list[str] = field(default_factory=list)
    kind: str = "post"
    open_from: int = DEFAULT_OPEN_FROM
    open_until: int = DEFAULT_OPEN_UNTIL


def _check_capacity(errors: dict[str, str], kind: str, capacity: Any) -> None:
    if not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
        errors["capacity"] = f"名额须在 0 到 {MAX_CAPACITY} 之间"
    elif kind == "post" and capacity < 1:
        errors["capacity"] = "岗位至少要有 1 个名额"


async def create_post(*, actor: User, form: PostForm) -> ServicePost:
    """A post (capacity ≥ 1) or community task for a community and term, with its service
    hours (QR check-in only then); its staff only."""
    errors: dict[str, str] = {}
    if not (may_exist(form.community_id) and await Community.exists(id=form.community_id)):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, form.community_id)
    title = _text(errors, "title", form.title, label="岗位名称", max_length=64, required=True)
    description = _text(
        errors,
        "description",
        form.description,
        label="岗位职责",
        max_length=2000,
        required=False,
        multiline=True,
    )
    location = _text(
        errors, "location", form.location, label="服务地点", max_length=64, required=False
    )
    if form.kind not in ("post", "task"):
        errors["kind"] = "类型只能是岗位或社区任务"
    if not isinstance(form.term, int) or not MIN_TERM <= form.term <= MAX_TERM:
        errors["term"] = "年度不正确"
    _check_capacity(errors, form.kind, form.capacity)
    _check_hours(errors, form.open_from, form.open_until)
    skills = list(dict.fromkeys(s.strip() for s in form.skills if s and s.strip()))
    if len(skills) > MAX_SKILLS or any(len(s) > 16 for s in skills):
        errors["skills"] = f"所需特长最多 {MAX_SKILLS} 项，每项不超过 16 个字"
    if errors:
        raise Invalid(fields=errors)
    async with in_transaction():
        return await ServicePost.create(
            community_id=form.community_id,
            term=form.term,
            kind=form.kind,
            title=title,
            description=description,
            location=location,
            skills=skills,
            capacity=form.capacity if form.kind == "post" else 0,
            open_from=form.open_from,
            open_until=form.open_until,
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


async def update_post(
    *,
    actor: User,
    post_id: int,
    title: str | None = None,
    description: str | None = None,
    location: str | None = None,
    capacity: int | None = None,
    skills: list[str] | None = None,
    status: str | None = None,
    open_from: int | None = None,
    open_until: int | None = None,
) -> ServicePost:
    """Change a post; capacity never below the current holders (one guarded UPDATE)."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if title is not None:
        values["title"] = _text(
            errors, "title", title, label="岗位名称", max_length=64, required=True
        )
    if description is not None:
        values["description"] = _text(
            errors,
            "description",
            description,
            label="岗位职责",
            max_length=2000,
            required=False,
            multiline=True,
        )
    if location is not None:
        values["location"] = _text(
            errors, "location", location, label="服务地点", max_length=64, required=False
        )
    if skills is not None:
        values["skills"] = list(dict.fromkeys(s.strip() for s in skills if s and s.strip()))
        if len(values["skills"]) > MAX_SKILLS:
            errors["skills"] = f"所需特长最多 {MAX_SKILLS} 项"
    if status is not None:
        if status not in ("active", "closed"):
            errors["status"] = "状态只能是 active 或 closed"
        values["status"] = status
    if capacity is not None:
        _check_capacity(errors, post.kind, capacity)
        if post.kind == "post":
            values["capacity"] = capacity
    if open_from is not None or open_until is not None:
        values["open_from"] = post.open_from if open_from is None else open_from
        values["open_until"] = post.open_until if open_until is None else open_until
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


@dataclass
class PostView:
    """A post as one viewer sees it: the skills of theirs it wants, whether they hold it."""

    post: ServicePost
    matched_skills: list[str]
    held_by_me: bool

    @property
    def seats_left(self) -> int:
        return max(0, self.post.capacity - self.post.taken)

    @property
    def suggested(self) -> bool:
        return bool(self.matched_skills)


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


def _unguarded_claims() -> bool:
    settings = get_settings()
    return settings.env == "dev" and settings.test_unguarded_post_claim


async def _race_window() -> None:
    # Long enough that every claim of a burst has read before the first one writes; the
    # lockstep control test puts a barrier here instead.
    await asyncio.sleep(0.05)


async def _take_unguarded_in_tx(post: ServicePost, user_id: int) -> None:
    # The control case of the claim race tests, never reachable in prod: read whether the
    # member holds a post this term and how full the post is, pause, check, then write back
    # what was read. With no row lock and no term key, nothing else stops the race.
    holds = await PostAssignment.exists(user_id=user_id, term=post.term, status="active")
    taken, capacity = await ServicePost.get(id=post.id).values_list("taken", "capacity")
    await _race_window()
    if holds:
        raise AlreadyHasPost()
    if taken >= capacity:
        raise PostFull()
    await ServicePost.filter(id=post.id).update(taken=taken + 1)


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
    unguarded = _unguarded_claims()
    registration = PartyRegistration.filter(
        active_key=f"u{user_id}", community_id=post.community_id, status="approved"
    )
    if not unguarded:
        # Locks the member's registration: a rejection or move of this member waits for
        # us, and so does their next claim.
        registration = registration.select_for_update()
    if await registration.first() is None:
        if assigned_by is not None:
            raise NotPartyMember("该居民不是本社区已报到的党员，不能分配岗位")
        raise NotPartyMember()
    term_key: str | None = f"{user_id}:{post.term}"
    if unguarded:
        await _take_unguarded_in_tx(post, user_id)
        term_key = None
    else:
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


async def remove_assignment(*, actor: User, assignment_id: int, reason: str = "") -> PostAssignment:
    """Staff take a member off a post (the place is freed, the member is told)."""
    assignment = (
        await PostAssignment.get_or_none(id=assignment_id) if may_exist(assignment_id) else None
    )
    if assignment is None:
        raise NotFound("岗位认领记录不存在")
    await accounts_service.require_staff_of(actor, assignment.community_id)
    reason = clean_text(reason, field="reason", label="调整原因", max_length=200)
    reason = reason or "社区工作人员调整岗位"
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


async def member_names(user_ids: Iterable[int]) -> dict[int, str]:
    """User id → the name on their latest registration (nickname if none)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    names = dict(await User.filter(id__in=ids).values_list("id", "nickname"))
    for user_id, name in (
        await PartyRegistration.filter(user_id__in=ids)
        .order_by("id")
        .values_list("user_id", "name")
    ):
        names[user_id] = name
    return names


async def post_titles(post_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in post_ids if i is not None}
    return dict(await ServicePost.filter(id__in=ids).values_list("id", "title")) if ids else {}


# --- check-in by rotating QR code ---


@dataclass(frozen=True)
class CheckinCode:
    code: str
    expires_at: datetime
    url: str


def checkin_url(post_id: int, code: str) -> str:
    """The link the QR code carries: the member's check-in page with the code filled in."""
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}{PARTY_URL}/checkin?{urlencode({'post': post_id, 'code': code})}"


async def checkin_code(*, actor: User, post_id: int) -> CheckinCode:
    """The post's current rotating check-in code (staff of its community show it as a QR)."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    code, expires_at = checkin.current_code(subject=post_subject(post.id))
    return CheckinCode(code=code, expires_at=expires_at, url=checkin_url(post.id, code))


async def _may_serve_at(user: User, post: ServicePost) -> None:
    if not await PartyRegistration.exists(
        active_key=f"u{user.id}", community_id=post.community_id, status="approved"
    ):
        raise NotPartyMember()
    if post.kind == "post" and not await PostAssignment.exists(
        user_id=user.id, post_id=post.id, status="active"
    ):
        raise NotYourPost()


async def _verify(user: User, post: ServicePost, code: str) -> None:
    await checkin.verify_code_for(subject=post_subject(post.id), user_id=user.id, code=code or "")


def _check_open(post: ServicePost, now: datetime) -> None:
    local = now.astimezone(_tz())
    if not post.open_from <= local.hour * 60 + local.minute < post.open_until:
        raise PostOffHours(f"本岗位服务时间为 {opening_hours(post)}，请在服务时间内签到")


async def expire_stale_records(*, user_id: int | None = None) -> int:
    """Close check-ins left open longer than the longest session as expired (no minutes
    until staff correct them); safe to run anywhere, any number of times."""
    cutoff = clock.now() - timedelta(minutes=get_settings().party_session_max_minutes)
    stale = ServiceRecord.filter(status="open", started_at__lt=cutoff)
    if user_id is not None:
        stale = stale.filter(user_id=user_id)
    expired = 0
    for record_id in await stale.values_list("id", flat=True):
        async with in_transaction():
            changed = await ServiceRecord.filter(id=record_id, status="open").update(
                status="expired", open_key=None, updated_at=clock.now()
            )
            if changed:
                await ServiceRecordAudit.create(
                    record_id=record_id,
                    actor_id=None,
                    action="expired",
                    reason="签到后超过最长服务时长未签退",
                    before={"status": "open"},
                    after={"status": "expired"},
                    created_at=clock.now(),
                )
                expired += 1
    return expired


async def check_in(*, user: User, post_id: int, code: str) -> ServiceRecord:
    """Start a service record at a post (its holder) or task (any approved member of its
    community) with the post's current code, within its service hours; one open check-in
    per person (unique key); repeated wrong codes lock the person out for a while."""
    post = await get_post(post_id=post_id)
    _check_open(post, clock.now())
    await _verify(user, post, code)
    await _may_serve_at(user, post)
    await expire_stale_records(user_id=user.id)
    now = clock.now()
    try:
        async with in_transaction():
            return await ServiceRecord.create(
                user_id=user.id,
                community_id=post.community_id,
                post_id=post.id,
                task=post.title if post.kind == "task" else "",
                source="qr",
                status="open",
                open_key=f"u{user.id}",
                started_at=now,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError as exc:
        raise AlreadyCheckedIn() from exc


async def check_out(*, user: User, post_id: int, code: str) -> ServiceRecord:
    """End the user's open record at this post with its current code: minutes per local
    day (capped), points once. A check-in older than the longest session expires instead."""
    post = await get_post(post_id=post_id)
    await _verify(user, post, code)
    if await expire_stale_records(user_id=user.id):
        record = await ServiceRecord.filter(user_id=user.id, status="expired").order_by("-id")
        return record[0]
    now = clock.now()
    async with in_transaction():
        record = await ServiceRecord.get_or_none(
            open_key=f"u{user.id}", post_id=post.id, status="open"
        )
        if record is None:
            raise NotCheckedIn()
        changed = await ServiceRecord.filter(id=record.id, status="open").update(
            status="closed", open_key=None, ended_at=now, updated_at=now
        )
        if not changed:
            raise NotCheckedIn()
        return await _credit_in_tx(record_id=record.id)


def split_by_local_day(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[date, int]]:
    """Whole minutes from `start` to `end` on each local day they touch.

    Each day gets the minutes elapsed by its end less those elapsed by its start, so the
    parts always add up to the whole minutes of the span.
    """
    if end <= start:
        return []
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    parts: list[tuple[date, int]] = []
    day = start_utc.astimezone(tz).date()
    elapsed_before = 0
    while True:
        boundary = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        segment_end = min(boundary, end_utc)
        elapsed = int((segment_end - start_utc).total_seconds()) // 60
        if elapsed > elapsed_before:
            parts.append((day, elapsed - elapsed_before))
        elapsed_before = elapsed
        if segment_end >= end_utc:
            return parts
        day += timedelta(days=1)


async def _credit_in_tx(*, record_id: int) -> ServiceRecord:
    """(Re)compute a closed record's minutes per local day under the day cap and pay its
    points once. The member's user row is locked first: their records credit one by one."""
    settings = get_settings()
    record = await ServiceRecord.get(id=record_id)
    await User.filter(id=record.user_id).select_for_update().first()
    await ServiceRecordDay.filter(record_id=record.id).delete()
    credited = 0
    raw = 0
    if record.status == "closed" and record.ended_at is not None:
        for day, minutes in split_by_local_day(record.started_at, record.ended_at, _tz()):
            raw += minutes
            used = (
                await ServiceRecordDay.filter(user_id=record.user_id, service_date=day)
                .annotate(total=Sum("minutes"))
                .first()
                .values_list("total", flat=True)
            ) or 0
            allowed = max(0, min(minutes, settings.party_daily_minutes_cap - used))
            if allowed:
                await ServiceRecordDay.create(
                    record_id=record.id,
                    user_id=record.user_id,
                    community_id=record.community_id,
                    post_id=record.post_id,
                    service_date=day,
                    minutes=allowed,
                )
                credited += allowed
    points = record.points
    if credited > 0:
        title = (await post_titles([record.post_id])).get(record.post_id) or record.task
        # Priced by the rule in force when the service began; a correction never pays twice.
        entry = await points_service.award_by_rule_in_tx(
            user_id=record.user_id,
            event_type="service_hour",
            quantity=Decimal(credited) / 60,
            source_type=POINTS_SOURCE,
            source_id=str(record.id),
            reason=f"党员志愿服务 {hours(credited)} 小时：{title}"[:255],
            occurred_at=record.started_at,
        )
        if entry is not None:
            points = entry.delta
    await ServiceRecord.filter(id=record.id).update(
        raw_minutes=raw, minutes=credited, points=points, updated_at=clock.now()
    )
    return await ServiceRecord.get(id=record.id)


# --- staff: offline records and corrections ---


def _check_span(errors: dict[str, str], started_at: Any, ended_at: Any) -> None:
    if not isinstance(started_at, datetime) or started_at.tzinfo is None:
        errors["started_at"] = "开始时间格式不正确"
        return
    if not isinstance(ended_at, datetime) or ended_at.tzinfo is None:
        errors["ended_at"] = "结束时间格式不正确"
        return
    if ended_at <= started_at:
        errors["ended_at"] = "结束时间须晚于开始时间"
    elif ended_at > clock.now() + timedelta(minutes=5):
        errors["ended_at"] = "不能登记将来的服务"
    elif ended_at - started_at > timedelta(minutes=get_settings().party_session_max_minutes):
        hours_max = get_settings().party_session_max_minutes // 60
        errors["ended_at"] = f"单次服务不能超过 {hours_max} 小时，请分次登记"


def _snapshot(record: ServiceRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "started_at": record.started_at.astimezone(UTC).isoformat(),
        "ended_at": record.ended_at.astimezone(UTC).isoformat() if record.ended_at else None,
        "minutes": record.minutes,
    }


@dataclass
class OfflineRecordForm:
    """Service done without a check-in, entered by staff."""

    user_id: int
    community_id: int
    started_at: datetime
    ended_at: datetime
    post_id: int | None = None
    task: str = ""
    note: str = ""


async def add_offline_record(*, actor: User, form: OfflineRecordForm) -> ServiceRecord:
    """Staff of the community record service done offline for one of its approved members
    (day cap and points as for a check-in, audited)."""
    if not (may_exist(form.community_id) and await Community.exists(id=form.community_id)):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, form.community_id)
    errors: dict[str, str] = {}
    task = _text(errors, "task", form.task, label="服务事项", max_length=64, required=False)
    note = _text(errors, "note", form.note, label="备注", max_length=200, required=False)
    _check_span(errors, form.started_at, form.ended_at)
    if form.post_id is not None:
        if not (
            may_exist(form.post_id)
            and await ServicePost.exists(id=form.post_id, community_id=form.community_id)
        ):
            errors["post_id"] = "岗位不属于该社区"
    elif not task:
        errors["task"] = "请选择岗位或填写服务事项"
    if not (
        may_exist(form.user_id)
        and await PartyRegistration.exists(
            user_id=form.user_id, community_id=form.community_id, status="approved"
        )
    ):
        errors["user_id"] = "该居民不是本社区已报到的党员"
    if errors:
        raise Invalid(fields=errors)
    now = clock.now()
    async with in_transaction():
        record = await ServiceRecord.create(
            user_id=form.user_id,
            community_id=form.community_id,
            post_id=form.post_id,
            task=task,
            source="offline",
            status="closed",
            started_at=form.started_at,
            ended_at=form.ended_at,
            note=note,
            created_by_id=actor.id,
            created_at=now,
            updated_at=now,
        )
        record = await _credit_in_tx(record_id=record.id)
        await ServiceRecordAudit.create(
            record_id=record.id,
            actor_id=actor.id,
            action="created",
            reason=note or "线下服务补录",
            before=None,
            after=_snapshot(record),
            created_at=now,
        )
    return record


async def correct_record(
    *, actor: User, record_id: int, started_at: datetime, ended_at: datetime, reason: str
) -> ServiceRecord:
    """Staff correct a record's times (an open or expired one is closed by it): minutes are
    credited again under the day cap, points stay paid once, the change is audited."""
    record = await get_record(viewer=actor, record_id=record_id)
    await accounts_service.require_staff_of(actor, record.community_id)
    errors: dict[str, str] = {}
    reason = _text(errors, "reason", reason, label="更正原因", max_length=200, required=True)
    _check_span(errors, started_at, ended_at)
    if errors:
        raise Invalid(fields=errors)
    now = clock.now()
    async with in_transaction():
        before = await ServiceRecord.get(id=record.id)
        changed = await ServiceRecord.filter(id=record.id, updated_at=before.updated_at).update(
            status="closed",
            open_key=None,
            started_at=started_at,
            ended_at=ended_at,
            updated_at=now,
        )
        if not changed:
            raise Conflict("该记录刚刚被修改，请刷新后再试", code="record_changed")
        corrected = await _credit_in_tx(record_id=record.id)
        await ServiceRecordAudit.create(
            record_id=record.id,
            actor_id=actor.id,
            action="corrected",
            reason=reason,
            before=_snapshot(before),
            after=_snapshot(corrected),
            created_at=now,
        )
    return corrected


async def get_record(*, viewer: User, record_id: int) -> ServiceRecord:
    """One service record, for the member or staff of its community."""
    record = await ServiceRecord.get_or_none(id=record_id) if may_exist(record_id) else None
    if record is None or (
        record.user_id != viewer.id
        and not await accounts_service.is_staff_of(viewer, record.community_id)
    ):
        raise NotFound("服务记录不存在")
    return record


async def record_audits(*, record: ServiceRecord) -> list[ServiceRecordAudit]:
    """The audit trail of a record, oldest first."""
    return await ServiceRecordAudit.filter(record_id=record.id).order_by("id")


async def list_records(
    *,
    actor: User,
    page: PageRequest,
    community_id: int,
    user_id: int | None = None,
    post_id: int | None = None,
    status: str | None = None,
) -> Page[ServiceRecord]:
    """A community's service records, newest first (its staff only)."""
    await accounts_service.require_staff_of(actor, community_id)
    queryset = ServiceRecord.filter(community_id=community_id)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if post_id is not None:
        queryset = queryset.filter(post_id=post_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    return await paginate(queryset, page, descending=True)


@dataclass
class MyService:
    """A member's credited minutes (all time and this year) and a page of their records."""

    total_minutes: int
    term_minutes: int
    page: Page[ServiceRecord]
    open_record: ServiceRecord | None


async def my_service(*, user: User, page: PageRequest) -> MyService:
    """The user's own service records and hours."""
    total = await _minutes_sum(ServiceRecordDay.filter(user_id=user.id))
    term_start = date(current_term(), 1, 1)
    term = await _minutes_sum(
        ServiceRecordDay.filter(user_id=user.id, service_date__gte=term_start)
    )
    records = await paginate(ServiceRecord.filter(user_id=user.id), page, descending=True)
    open_record = await ServiceRecord.get_or_none(open_key=f"u{user.id}")
    return MyService(total_minutes=total, term_minutes=term, page=records, open_record=open_record)


async def open_record_at(*, user: User, post_id: int) -> ServiceRecord | None:
    """The user's open check-in at this post, if any (the check-in page offers 签退)."""
    return await ServiceRecord.get_or_none(open_key=f"u{user.id}", post_id=post_id)


async def _minutes_sum(queryset) -> int:
    value = await queryset.annotate(total=Sum("minutes")).first().values_list("total", flat=True)
    return int(value or 0)


# --- hours ---


@dataclass(frozen=True)
class HoursRow:
    key: int
    name: str
    minutes: int

    @property
    def hours(self) -> float:
        return hours(self.minutes)


def date_range(start_date: date | None, end_date: date | None) -> tuple[date, date]:
    """The report period (default: this year to today), bounded before any arithmetic."""
    check_date(start_date, field="start_date")
    check_date(end_date, field="end_date")
    end = end_date or local_today()
    start = start_date or date(end.year, 1, 1)
    if start > end:
        raise Invalid(fields={"start_date": "开始日期不能晚于结束日期"})
    if (end - start).days > 366 * 5:
        raise Invalid(fields={"start_date": "日期范围不能超过 5 年"})
    return start, end


async def service_hours(
    *,
    actor: User,
    group_by: str,
    community_id: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> list[HoursRow]:
    """Credited service minutes per member, post or community in a local date range,
    within the actor's communities, most first."""
    start, end = date_range(start_date, end_date)
    queryset = ServiceRecordDay.filter(service_date__gte=start, service_date__lte=end)
    if community_id is not None:
        await accounts_service.require_staff_of(actor, community_id)
        queryset = queryset.filter(community_id=community_id)
    else:
        scope = await accounts_service.staff_community_ids(actor)
        if scope is not None:
            if not scope:
                raise Forbidden("只有社区工作人员可以查看服务时长")
            queryset = queryset.filter(community_id__in=scope)
    column = {"member": "user_id", "post": "post_id", "community": "community_id"}.get(group_by)
    if column is None:
        raise Invalid(fields={"group_by": "只能按 member、post 或 community 汇总"})
    rows = (
        await queryset.annotate(total=Sum("minutes")).group_by(column).values_list(column, "total")
    )
    keys = [key for key, _ in rows]
    if group_by == "member":
        names = await member_names(keys)
    elif group_by == "post":
        names = await post_titles(keys)
    else:
        names = await community_names(keys)
    result = [
        HoursRow(key=key or 0, name=names.get(key, "社区任务（未关联岗位）"), minutes=int(total))
        for key, total in rows
    ]
    return sorted(result, key=lambda r: (-r.minutes, r.key))


# --- monthly summary ---


def _previous_month(today: date) -> tuple[date, date]:
    first_this = today.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    return last_prev.replace(day=1), last_prev


async def send_monthly_summaries(*, batch_size: int = 200) -> int:
    """Queue last month's service summary for every member approved before it ended; the
    dedupe key makes every run after the first a no-op, so it may run hourly anywhere."""
    first, last = _previous_month(local_today())
    month = f"{first:%Y-%m}"
    month_end = day_start(last + timedelta(days=1))
    queued = 0
    last_id = 0
    while True:
        batch = (
            await PartyRegistration.filter(
                id__gt=last_id, status="approved", approved_at__lt=month_end
            )
            .order_by("id")
            .limit(batch_size)
        )
        if not batch:
            return queued
        last_id = batch[-1].id
        totals = dict(
            await ServiceRecordDay.filter(
                user_id__in=[r.user_id for r in batch],
                service_date__gte=first,
                service_date__lte=last,
            )
            .annotate(total=Sum("minutes"))
            .group_by("user_id")
            .values_list("user_id", "total")
        )
        async with in_transaction():
            for registration in batch:
                served = int(totals.get(registration.user_id) or 0)
                body = (
                    f"{first.month} 月您参加党员志愿服务 {hours(served)} 小时，感谢您的奉献！"
                    if served
                    else f"{first.month} 月您还没有服务记录，欢迎到社区认领岗位、参与服务。"
                )
                await enqueue(
                    template_key="notice",
                    context={
                        "title": f"{first.month}月党员服务小结",
                        "body": body,
                        "summary": f"服务 {hours(served)} 小时",
                        "url": PARTY_URL + "/service",
                    },
                    dedupe_key=f"party-monthly:{registration.user_id}:{month}",
                    user_id=registration.user_id,
                )
                queued += 1
