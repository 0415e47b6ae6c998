"""在职党员报到 workbench for community staff: the approval queue, the roster, posts and who
holds them, the rotating QR code, service records and the 双报到 report. Every rule lives in
backend.party; these handlers only parse and render."""

from __future__ import annotations

import math
import re
from datetime import date
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import checkin
from backend.core.clock import clock, local_text
from backend.core.config import get_settings
from backend.core.errors import DomainError, Forbidden, Invalid
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import PageRequest
from backend.core.xlsx import xlsx_response
from backend.party import hours, names, posts, records, registrations, reports
from backend.party.exceptions import CapacityBelowTaken, NotPartyMember
from backend.party.models import REGISTRATION_STATUS_NAMES
from backend.party.schemas import (
    DEFAULT_OPEN_FROM,
    DEFAULT_OPEN_UNTIL,
    MAX_CAPACITY,
    MAX_TERM,
    MIN_TERM,
    MINUTES_PER_DAY,
    CorrectionIn,
    OfflineRecordIn,
    PostIn,
    PostPatch,
    RemoveIn,
    ReviewIn,
)
from backend.party.views import RosterFilter, clock_text, registration_phone
from h5.forms import build, collect, max_length, parse_date, parse_local_datetime
from h5.page import page_router, see_other
from h5.pages.party import ALL, CommunityParam, party_page
from h5.render import describe_error
from h5.scope import staff_scope
from h5.session import CurrentUser

router = page_router()

STAFF = "/h5/party/staff"
REFUSE = "只有社区工作人员可以进入党员工作台"
DEFAULT_HOURS_TYPED = (clock_text(DEFAULT_OPEN_FROM), clock_text(DEFAULT_OPEN_UNTIL))
_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})")
# The limits the number boxes of the post forms show.
NUMBER_LIMITS = {"max_capacity": MAX_CAPACITY, "min_term": MIN_TERM, "max_term": MAX_TERM}


def _clock_minutes(errors: dict[str, str], value: str, *, field: str, label: str) -> int | None:
    """An HH:MM box (24:00 allowed, for "until midnight") as minutes after local midnight;
    a malformed one is recorded in `errors`."""
    match = _CLOCK.fullmatch(value.strip())
    if match and int(match[2]) < 60:
        minutes = int(match[1]) * 60 + int(match[2])
        if minutes <= MINUTES_PER_DAY:
            return minutes
    errors[field] = f"{label}请按 07:00 这样的格式填写"
    return None


def _service_hours(errors: dict[str, str], open_from: str, open_until: str) -> dict[str, int]:
    """The post form's two service-hour boxes as minutes (the wrong ones in `errors`)."""
    typed = {
        "open_from": _clock_minutes(errors, open_from, field="open_from", label="服务开始时间"),
        "open_until": _clock_minutes(errors, open_until, field="open_until", label="服务结束时间"),
    }
    return {k: v for k, v in typed.items() if v is not None}


def _input_value(moment: Any) -> str:
    """A moment as a datetime-local box shows it."""
    return local_text(moment, "%Y-%m-%dT%H:%M")


async def _staff_page(
    request: Request,
    user: User,
    template: str,
    community_id: int | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    scope = await staff_scope(user, refuse=REFUSE)
    community = scope.pick(community_id)
    return await party_page(
        request,
        user,
        template,
        status_code=status_code,
        communities=scope.communities,
        community_id=community.id,
        community_name=community.name,
        **context,
    )


async def _chosen(user: User, community_id: int | None) -> int:
    """The community the page works on: the one asked for when the user runs it."""
    return (await staff_scope(user, refuse=REFUSE)).pick(community_id).id


@router.get("/h5/party/staff")
async def staff_home(
    request: Request, user: CurrentUser, community_id: CommunityParam = None
) -> HTMLResponse:
    chosen = await _chosen(user, community_id)
    pending = await registrations.list_registrations(
        actor=user, page=ALL, filters=RosterFilter(community_id=chosen, status="pending")
    )
    members = await registrations.approved_members(actor=user, community_id=chosen)
    views, _ = await posts.list_posts(viewer=None, page=ALL, community_id=chosen)
    return await _staff_page(
        request,
        user,
        "party/staff_home.html",
        chosen,
        tab="staff",
        pending=len(pending.items),
        members=len(members),
        posts=len(views),
    )


@router.get("/h5/party/staff/queue")
async def staff_queue(
    request: Request, user: CurrentUser, community_id: CommunityParam = None
) -> HTMLResponse:
    chosen = await _chosen(user, community_id)
    pending = await registrations.list_registrations(
        actor=user, page=ALL, filters=RosterFilter(community_id=chosen, status="pending")
    )
    titles = await names.post_titles(p for r in pending.items for p in r.preferred_post_ids)
    return await _staff_page(
        request,
        user,
        "party/staff_queue.html",
        chosen,
        tab="queue",
        items=pending.items,
        titles=titles,
        phone=registration_phone,
        limit=partial(max_length, ReviewIn),
    )


@router.post("/h5/party/staff/registrations/{registration_id}/review")
async def staff_review(
    request: Request,
    user: CurrentUser,
    registration_id: int,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Annotated[str, Form()] = "",
) -> Response:
    data = build(ReviewIn, {"approve": decision == "approve", "reason": reason})
    registration = await registrations.review_registration(
        actor=user, registration_id=registration_id, data=data
    )
    done = "approved" if decision == "approve" else "rejected"
    return see_other(f"{STAFF}/queue?community_id={registration.community_id}&done={done}")


def _roster_filter(
    community_id: int, status: str | None, q: str | None, skill: str | None
) -> RosterFilter:
    return RosterFilter(
        community_id=community_id,
        status=status if status in REGISTRATION_STATUS_NAMES else None,
        q=q or None,
        skill=skill or None,
    )


@router.get("/h5/party/staff/roster")
async def staff_roster(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=32)] = None,
    skill: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    chosen = await _chosen(user, community_id)
    filters = _roster_filter(chosen, status, q, skill)
    result = await registrations.list_registrations(
        actor=user, page=PageRequest(limit=50, cursor=cursor), filters=filters
    )
    query = {
        k: v
        for k, v in (
            ("community_id", chosen),
            ("status", filters.status),
            ("q", filters.q),
            ("skill", filters.skill),
        )
        if v
    }
    return await _staff_page(
        request,
        user,
        "party/staff_roster.html",
        chosen,
        tab="roster",
        result=result,
        filters=filters,
        skills=get_settings().party_skills,
        phone=registration_phone,
        export_url=f"{STAFF}/roster.xlsx?{urlencode(query)}",
        next_url=f"{STAFF}/roster?{urlencode({**query, 'cursor': result.next_cursor})}"
        if result.next_cursor
        else None,
    )


@router.get("/h5/party/staff/roster.xlsx")
async def staff_roster_xlsx(
    user: CurrentUser,
    community_id: CommunityParam = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=32)] = None,
    skill: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    chosen = await _chosen(user, community_id)
    content = await reports.roster_xlsx(
        actor=user, filters=_roster_filter(chosen, status, q, skill)
    )
    return xlsx_response("party-roster.xlsx", content)


@router.get("/h5/party/staff/posts")
async def staff_posts(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    term: Annotated[int | None, Query(ge=MIN_TERM, le=MAX_TERM)] = None,
) -> HTMLResponse:
    return await _staff_posts_page(request, user, community_id, term=term)


async def _staff_posts_page(
    request: Request,
    user: User,
    community_id: int | None,
    *,
    term: int | None = None,
    form: dict[str, Any] | None = None,
    hours_typed: tuple[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    chosen = await _chosen(user, community_id)
    term = term or hours.current_term()
    views, _ = await posts.list_posts(
        viewer=None, page=ALL, community_id=chosen, term=term, include_closed=True
    )
    served = await hours.service_hours(
        actor=user,
        group_by="post",
        community_id=chosen,
        start_date=date(term, 1, 1),
        end_date=date(term, 12, 31),
    )
    return await _staff_page(
        request,
        user,
        "party/staff_posts.html",
        chosen,
        status_code=status_code,
        tab="staff_posts",
        views=views,
        post_hours={row.key: row.hours for row in served},
        term=term,
        form=form,
        hours_typed=hours_typed or DEFAULT_HOURS_TYPED,
        skills=get_settings().party_skills,
        limit=partial(max_length, PostIn),
        error=error,
        **NUMBER_LIMITS,
    )


@router.post("/h5/party/staff/posts")
async def staff_create_post(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int, Form(ge=1, le=MAX_ORG_ID)],
    term: Annotated[int, Form()],
    title: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "post",
    capacity: Annotated[int, Form()] = 0,
    description: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    skills: Annotated[list[str], Form()] = [],  # noqa: B006
    open_from: Annotated[str, Form(max_length=8)] = DEFAULT_HOURS_TYPED[0],
    open_until: Annotated[str, Form(max_length=8)] = DEFAULT_HOURS_TYPED[1],
) -> Response:
    form = {
        "community_id": community_id,
        "title": title,
        "term": term,
        "capacity": capacity,
        "description": description,
        "location": location,
        "skills": skills,
        "kind": kind,
    }
    errors: dict[str, str] = {}
    try:
        data = build(PostIn, {**form, **_service_hours(errors, open_from, open_until)}, errors)
        post = await posts.create_post(actor=user, data=data)
    except Invalid as exc:
        return await _staff_posts_page(
            request,
            user,
            community_id,
            form=form,
            hours_typed=(open_from, open_until),
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"{STAFF}/posts/{post.id}?done=post_created")


async def _staff_post_page(
    request: Request,
    user: User,
    post_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    post = await posts.get_post_for_staff(actor=user, post_id=post_id)
    assignments = await posts.list_assignments(actor=user, post_id=post.id)
    members = await registrations.approved_members(actor=user, community_id=post.community_id)
    done = await records.list_records(
        actor=user, page=PageRequest(limit=20), community_id=post.community_id, post_id=post.id
    )
    people = await names.member_names(
        [a.user_id for a in assignments] + [r.user_id for r in done.items]
    )
    now = clock.now()
    return await _staff_page(
        request,
        user,
        "party/staff_post.html",
        post.community_id,
        status_code=status_code,
        tab="staff_posts",
        post=post,
        assignments=assignments,
        members=members,
        records=done.items,
        names=people,
        error=error,
        record_limit=partial(max_length, OfflineRecordIn),
        default_start=_input_value(now.replace(minute=0, second=0, microsecond=0)),
        default_end=_input_value(now.replace(second=0, microsecond=0)),
        **NUMBER_LIMITS,
    )


@router.get("/h5/party/staff/posts/{post_id}")
async def staff_post(request: Request, user: CurrentUser, post_id: int) -> HTMLResponse:
    return await _staff_post_page(request, user, post_id)


@router.post("/h5/party/staff/posts/{post_id}/edit")
async def staff_edit_post(
    request: Request,
    user: CurrentUser,
    post_id: int,
    capacity: Annotated[int | None, Form()] = None,
    status: Annotated[str | None, Form()] = None,
    open_from: Annotated[str | None, Form(max_length=8)] = None,
    open_until: Annotated[str | None, Form(max_length=8)] = None,
) -> Response:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"capacity": capacity, "status": status}
    if open_from is not None or open_until is not None:
        values.update(_service_hours(errors, open_from or "", open_until or ""))
    try:
        data = build(PostPatch, {k: v for k, v in values.items() if v is not None}, errors)
        await posts.update_post(actor=user, post_id=post_id, data=data)
    except (Invalid, CapacityBelowTaken) as exc:
        return await _staff_post_page(
            request, user, post_id, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"{STAFF}/posts/{post_id}?done=post_saved")


@router.post("/h5/party/staff/posts/{post_id}/assign")
async def staff_assign(
    request: Request,
    user: CurrentUser,
    post_id: int,
    user_id: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    try:
        await posts.assign_post(actor=user, post_id=post_id, user_id=user_id)
    except DomainError as exc:
        if isinstance(exc, Forbidden) and not isinstance(exc, NotPartyMember):
            raise
        return await _staff_post_page(
            request, user, post_id, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"{STAFF}/posts/{post_id}?done=assigned")


@router.post("/h5/party/staff/assignments/{assignment_id}/remove")
async def staff_remove(
    request: Request,
    user: CurrentUser,
    assignment_id: int,
    reason: Annotated[str, Form()] = "",
) -> Response:
    assignment = await posts.remove_assignment(
        actor=user, assignment_id=assignment_id, data=build(RemoveIn, {"reason": reason})
    )
    return see_other(f"{STAFF}/posts/{assignment.post_id}?done=removed")


@router.get("/h5/party/staff/posts/{post_id}/qr")
async def staff_qr(request: Request, user: CurrentUser, post_id: int) -> HTMLResponse:
    code = await records.checkin_code(actor=user, post_id=post_id)
    post = await posts.get_post(post_id=post_id)
    response = await party_page(
        request,
        user,
        "party/staff_qr.html",
        post=post,
        code=code,
        qr=checkin.qr_svg(code.url),
    )
    # The browser reloads when the code rotates (every 30 s): no script needed.
    response.headers["Refresh"] = str(
        max(1, math.ceil((code.expires_at - clock.now()).total_seconds()))
    )
    return response


@router.post("/h5/party/staff/records")
async def staff_add_record(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int, Form(ge=1, le=MAX_ORG_ID)],
    user_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    started_at: Annotated[str, Form(max_length=32)],
    ended_at: Annotated[str, Form(max_length=32)],
    post_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    task: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    values = {
        "user_id": user_id,
        "community_id": community_id,
        "post_id": post_id,
        "task": task,
        "note": note,
        "started_at": collect(errors, parse_local_datetime, started_at, field="started_at"),
        "ended_at": collect(errors, parse_local_datetime, ended_at, field="ended_at"),
    }
    try:
        data = build(OfflineRecordIn, {k: v for k, v in values.items() if v is not None}, errors)
        record = await records.add_offline_record(actor=user, data=data)
    except Invalid as exc:
        if post_id is None:
            raise
        return await _staff_post_page(
            request, user, post_id, error=describe_error(exc), status_code=422
        )
    return see_other(f"{STAFF}/records/{record.id}?done=record_added")


@router.get("/h5/party/staff/records")
async def staff_records(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    status: Annotated[str | None, Query(pattern="^(open|closed|expired)$")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    chosen = await _chosen(user, community_id)
    result = await records.list_records(
        actor=user, page=PageRequest(limit=50, cursor=cursor), community_id=chosen, status=status
    )
    people = await names.member_names(r.user_id for r in result.items)
    titles = await names.post_titles(r.post_id for r in result.items)
    members = await registrations.approved_members(actor=user, community_id=chosen)
    now = clock.now()
    query = {k: v for k, v in (("community_id", chosen), ("status", status)) if v}
    return await _staff_page(
        request,
        user,
        "party/staff_records.html",
        chosen,
        tab="records",
        records=result.items,
        names=people,
        titles=titles,
        members=members,
        status=status,
        record_limit=partial(max_length, OfflineRecordIn),
        default_start=_input_value(now.replace(minute=0, second=0, microsecond=0)),
        default_end=_input_value(now.replace(second=0, microsecond=0)),
        next_url=f"{STAFF}/records?{urlencode({**query, 'cursor': result.next_cursor})}"
        if result.next_cursor
        else None,
    )


async def _staff_record_page(
    request: Request,
    user: User,
    record_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    record = await records.get_record(viewer=user, record_id=record_id)
    if not await accounts_service.is_staff_of(user, record.community_id):
        raise Forbidden("只有本社区的工作人员可以查看")
    audits = await records.record_audits(record=record)
    people = await names.member_names([record.user_id, *(a.actor_id for a in audits)])
    titles = await names.post_titles([record.post_id])
    return await _staff_page(
        request,
        user,
        "party/staff_record.html",
        record.community_id,
        status_code=status_code,
        tab="records",
        record=record,
        audits=audits,
        names=people,
        titles=titles,
        start_value=_input_value(record.started_at),
        end_value=_input_value(record.ended_at or clock.now()),
        limit=partial(max_length, CorrectionIn),
        error=error,
    )


@router.get("/h5/party/staff/records/{record_id}")
async def staff_record(request: Request, user: CurrentUser, record_id: int) -> HTMLResponse:
    return await _staff_record_page(request, user, record_id)


@router.post("/h5/party/staff/records/{record_id}/correct")
async def staff_correct_record(
    request: Request,
    user: CurrentUser,
    record_id: int,
    started_at: Annotated[str, Form(max_length=32)],
    ended_at: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    values = {
        "started_at": collect(errors, parse_local_datetime, started_at, field="started_at"),
        "ended_at": collect(errors, parse_local_datetime, ended_at, field="ended_at"),
        "reason": reason,
    }
    try:
        data = build(CorrectionIn, {k: v for k, v in values.items() if v is not None}, errors)
        await records.correct_record(actor=user, record_id=record_id, data=data)
    except Invalid as exc:
        return await _staff_record_page(
            request, user, record_id, error=describe_error(exc), status_code=422
        )
    return see_other(f"{STAFF}/records/{record_id}?done=corrected")


async def _report_scope(
    user: User, community_id: int | None, scope: str | None
) -> tuple[int, bool]:
    """The community the report page works on, and whether it shows the whole street."""
    chosen = await _chosen(user, community_id)
    street = scope == "street" and await accounts_service.is_street_admin(user)
    return chosen, street


@router.get("/h5/party/staff/report")
async def staff_report(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    start_date: Annotated[str | None, Query(max_length=10)] = None,
    end_date: Annotated[str | None, Query(max_length=10)] = None,
    scope: Annotated[str | None, Query(pattern="^(community|street)$")] = None,
) -> HTMLResponse:
    chosen, street = await _report_scope(user, community_id, scope)
    report = await reports.party_report(
        actor=user,
        community_id=None if street else chosen,
        start_date=parse_date(start_date, field="start_date"),
        end_date=parse_date(end_date, field="end_date"),
    )
    query = {
        "community_id": chosen,
        "start_date": report.start_date.isoformat(),
        "end_date": report.end_date.isoformat(),
        **({"scope": "street"} if street else {}),
    }
    return await _staff_page(
        request,
        user,
        "party/staff_report.html",
        chosen,
        tab="report",
        report=report,
        street=street,
        may_see_street=await accounts_service.is_street_admin(user),
        export_url=f"{STAFF}/report.xlsx?{urlencode(query)}",
    )


@router.get("/h5/party/staff/report.xlsx")
async def staff_report_xlsx(
    user: CurrentUser,
    community_id: CommunityParam = None,
    start_date: Annotated[str | None, Query(max_length=10)] = None,
    end_date: Annotated[str | None, Query(max_length=10)] = None,
    scope: Annotated[str | None, Query(pattern="^(community|street)$")] = None,
) -> Response:
    chosen, street = await _report_scope(user, community_id, scope)
    content = await reports.report_xlsx(
        actor=user,
        community_id=None if street else chosen,
        start_date=parse_date(start_date, field="start_date"),
        end_date=parse_date(end_date, field="end_date"),
    )
    return xlsx_response("party-report.xlsx", content)
