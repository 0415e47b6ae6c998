"""在职党员报到 pages: report-in, my status, posts and claims, my service, QR check-in; for
staff the approval queue, roster, posts, the rotating QR code, records and the 双报到 report.
Every rule lives in backend.party; these handlers only parse and render."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import checkin
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import DomainError, Forbidden, Invalid
from backend.core.ids import MAX_ID
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.core.xlsx import xlsx_response
from backend.orgs import service as orgs_service
from backend.party import reports, service
from backend.party.models import REGISTRATION_STATUS_NAMES, TIME_SLOTS
from h5.forms import parse_date, parse_local_datetime
from h5.page import page_router, see_other
from h5.render import describe_error, render
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)
BASE = "/h5/party"
STAFF = "/h5/party/staff"
DONE_MESSAGES = {
    "registered": "报到信息已提交，请等待社区审核",
    "withdrawn": "已退出报到",
    "claimed": "岗位认领成功，服务时请扫码签到",
    "released": "已退出该岗位",
    "checked_in": "签到成功，服务结束时请再次扫码签退",
    "checked_out": "签退成功，服务时长已记录",
    "expired": "这次签到超过最长服务时长未签退，已作废，请联系社区工作人员更正",
    "approved": "已通过报到",
    "rejected": "已驳回报到",
    "post_created": "岗位已设立",
    "post_saved": "已保存",
    "assigned": "已分配岗位并通知党员",
    "removed": "已撤下并通知党员",
    "record_added": "服务记录已补录",
    "corrected": "服务记录已更正",
}
SOURCE_NAMES = {"qr": "扫码", "offline": "补录"}
RECORD_STATUS_NAMES = {"open": "服务中", "closed": "已完成", "expired": "未签退（已作废）"}
ASSIGNMENT_STATUS_NAMES = {"active": "在岗", "released": "本人退出", "removed": "已撤下"}


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})")
DEFAULT_HOURS_TYPED = (
    service.clock_text(service.DEFAULT_OPEN_FROM),
    service.clock_text(service.DEFAULT_OPEN_UNTIL),
)


def _clock_minutes(errors: dict[str, str], value: str, *, field: str, label: str) -> int:
    """An HH:MM box (24:00 allowed, for "until midnight") as minutes after local midnight;
    a malformed one is recorded in `errors`."""
    match = _CLOCK.fullmatch(value.strip())
    if match and int(match[2]) < 60:
        minutes = int(match[1]) * 60 + int(match[2])
        if minutes <= service.MINUTES_PER_DAY:
            return minutes
    errors[field] = f"{label}请按 07:00 这样的格式填写"
    return 0


def _service_hours(open_from: str, open_until: str) -> tuple[int, int]:
    """The post form's two service-hour boxes as minutes, or Invalid naming the wrong ones."""
    errors: dict[str, str] = {}
    start = _clock_minutes(errors, open_from, field="open_from", label="服务开始时间")
    end = _clock_minutes(errors, open_until, field="open_until", label="服务结束时间")
    if errors:
        raise Invalid(fields=errors)
    return start, end


def _input_value(moment: datetime | None) -> str:
    return moment.astimezone(_zone()).strftime("%Y-%m-%dT%H:%M") if moment else ""


async def _page(
    request: Request, user: User, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        template,
        status_code=status_code,
        is_staff=await accounts_service.is_staff_anywhere(user),
        local=service.local_time,
        hours=service.hours,
        opening_hours=service.opening_hours,
        clock_text=service.clock_text,
        status_names=REGISTRATION_STATUS_NAMES,
        record_status_names=RECORD_STATUS_NAMES,
        source_names=SOURCE_NAMES,
        assignment_status_names=ASSIGNMENT_STATUS_NAMES,
        done_message=DONE_MESSAGES.get(request.query_params.get("done", "")),
        **context,
    )


# --- member pages ---


@router.get("/h5/party")
async def hub(request: Request, user: CurrentUser) -> HTMLResponse:
    registration = await service.my_registration(user=user)
    assignments = [a for a in await service.my_assignments(user=user) if a.status == "active"]
    mine = await service.my_service(user=user, page=PageRequest(limit=1))
    titles = await service.post_titles(a.post_id for a in assignments)
    communities = await service.community_names([registration.community_id] if registration else [])
    return await _page(
        request,
        user,
        "party/index.html",
        tab="home",
        registration=registration,
        community_name=communities.get(registration.community_id) if registration else None,
        assignments=assignments,
        titles=titles,
        mine=mine,
    )


async def _register_page(
    request: Request,
    user: User,
    *,
    form: service.RegistrationForm | None = None,
    community_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    communities = (await orgs_service.list_communities(page=_ALL)).items
    community_id = (form.community_id if form else community_id) or user.community_id
    posts: list[service.PostView] = []
    if community_id:
        posts, _ = await service.list_posts(
            viewer=None, page=_ALL, community_id=community_id, kind="post"
        )
    current = await service.my_registration(user=user)
    return await _page(
        request,
        user,
        "party/register.html",
        status_code=status_code,
        tab="home",
        communities=communities,
        community_id=community_id,
        posts=posts,
        form=form,
        current=current,
        skills=get_settings().party_skills,
        time_slots=TIME_SLOTS,
        error=error,
    )


@router.get("/h5/party/register")
async def register_form(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    return await _register_page(request, user, community_id=community_id)


@router.post("/h5/party/register")
async def register(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    # Text lengths and characters are the service's to judge (the model columns' limits),
    # so its message names the field on the form.
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    work_unit: Annotated[str, Form()] = "",
    party_org: Annotated[str, Form()] = "",
    party_org_contact: Annotated[str, Form()] = "",
    party_org_phone: Annotated[str, Form(max_length=32)] = "",
    address: Annotated[str, Form()] = "",
    skills: Annotated[list[str], Form()] = [],  # noqa: B006
    skills_note: Annotated[str, Form()] = "",
    preferred_post_ids: Annotated[list[int], Form()] = [],  # noqa: B006
    available_times: Annotated[list[str], Form()] = [],  # noqa: B006
    available_note: Annotated[str, Form()] = "",
) -> Response:
    form = service.RegistrationForm(
        name=name,
        phone=phone,
        work_unit=work_unit,
        party_org=party_org,
        community_id=community_id or 0,
        party_org_contact=party_org_contact,
        party_org_phone=party_org_phone,
        address=address,
        skills=skills,
        skills_note=skills_note,
        preferred_post_ids=preferred_post_ids,
        available_times=available_times,
        available_note=available_note,
    )
    try:
        await service.register(user=user, form=form)
    except (Invalid, service.AlreadyRegistered) as exc:
        return await _register_page(
            request, user, form=form, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"{BASE}?done=registered")


@router.post("/h5/party/withdraw")
async def withdraw(request: Request, user: CurrentUser) -> Response:
    await service.withdraw_registration(user=user)
    return see_other(f"{BASE}?done=withdrawn")


@router.get("/h5/party/posts")
async def posts(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    registration = await service.my_registration(user=user)
    active = registration if registration and registration.active_key else None
    community_id = community_id or (active.community_id if active else user.community_id)
    views: list[service.PostView] = []
    if community_id:
        views, _ = await service.list_posts(viewer=user, page=_ALL, community_id=community_id)
    communities = (await orgs_service.list_communities(page=_ALL)).items
    return await _page(
        request,
        user,
        "party/posts.html",
        tab="posts",
        registration=active,
        community_id=community_id,
        communities=communities,
        suggested=[v for v in views if v.suggested and v.post.kind == "post"],
        views=views,
        term=service.current_term(),
    )


@router.post("/h5/party/posts/{post_id}/claim")
async def claim(request: Request, user: CurrentUser, post_id: int) -> Response:
    await service.claim_post(user=user, post_id=post_id)
    return see_other(f"{BASE}/posts?done=claimed")


@router.post("/h5/party/posts/{post_id}/release")
async def release(request: Request, user: CurrentUser, post_id: int) -> Response:
    await service.release_post(user=user, post_id=post_id)
    return see_other(f"{BASE}/posts?done=released")


@router.get("/h5/party/service")
async def my_service(
    request: Request,
    user: CurrentUser,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    mine = await service.my_service(user=user, page=PageRequest(limit=30, cursor=cursor))
    titles = await service.post_titles(r.post_id for r in mine.page.items)
    return await _page(request, user, "party/service.html", tab="service", mine=mine, titles=titles)


@router.get("/h5/party/checkin")
async def checkin_page(
    request: Request,
    user: CurrentUser,
    post: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    code: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    view = await service.view_post(viewer=user, post_id=post) if post else None
    open_here = await service.open_record_at(user=user, post_id=post) if post else None
    mine = await service.my_service(user=user, page=PageRequest(limit=1))
    return await _page(
        request,
        user,
        "party/checkin.html",
        tab="checkin",
        view=view,
        code=code if code.isdigit() else "",
        open_here=open_here,
        open_record=mine.open_record,
    )


@router.post("/h5/party/checkin")
async def checkin_submit(
    request: Request,
    user: CurrentUser,
    post_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    code: Annotated[str, Form(max_length=16)] = "",
    action: Annotated[str, Form(pattern="^(in|out)$")] = "in",
) -> Response:
    if action == "in":
        await service.check_in(user=user, post_id=post_id, code=code)
        return see_other(f"{BASE}/checkin?post={post_id}&done=checked_in")
    record = await service.check_out(user=user, post_id=post_id, code=code)
    done = "expired" if record.status == "expired" else "checked_out"
    return see_other(f"{BASE}/service?done={done}")


# --- staff pages ---


async def _staff_scope(user: User, community_id: int | None) -> tuple[list, int]:
    """The communities the user may run and the one chosen (Forbidden for non-staff)."""
    scope = await accounts_service.staff_community_ids(user)
    communities = (await orgs_service.list_communities(page=_ALL)).items
    if scope is not None:
        communities = [c for c in communities if c.id in scope]
    if not communities:
        raise Forbidden("只有社区工作人员可以进入党员工作台")
    chosen = community_id if community_id in {c.id for c in communities} else communities[0].id
    return communities, chosen


CommunityParam = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


async def _staff_page(
    request: Request,
    user: User,
    template: str,
    community_id: int | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    communities, chosen = await _staff_scope(user, community_id)
    return await _page(
        request,
        user,
        template,
        status_code=status_code,
        communities=communities,
        community_id=chosen,
        community_name=next(c.name for c in communities if c.id == chosen),
        **context,
    )


@router.get("/h5/party/staff")
async def staff_home(
    request: Request, user: CurrentUser, community_id: CommunityParam = None
) -> HTMLResponse:
    _, chosen = await _staff_scope(user, community_id)
    pending = await service.list_registrations(
        actor=user,
        page=_ALL,
        filters=service.RosterFilter(community_id=chosen, status="pending"),
    )
    members = await service.approved_members(actor=user, community_id=chosen)
    views, _ = await service.list_posts(viewer=None, page=_ALL, community_id=chosen)
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
    _, chosen = await _staff_scope(user, community_id)
    pending = await service.list_registrations(
        actor=user, page=_ALL, filters=service.RosterFilter(community_id=chosen, status="pending")
    )
    titles = await service.post_titles(p for r in pending.items for p in r.preferred_post_ids)
    return await _staff_page(
        request,
        user,
        "party/staff_queue.html",
        chosen,
        tab="queue",
        items=pending.items,
        titles=titles,
        phone=service.registration_phone,
    )


@router.post("/h5/party/staff/registrations/{registration_id}/review")
async def staff_review(
    request: Request,
    user: CurrentUser,
    registration_id: int,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Annotated[str, Form()] = "",
) -> Response:
    registration = await service.review_registration(
        actor=user,
        registration_id=registration_id,
        approve=decision == "approve",
        reason=reason,
    )
    done = "approved" if decision == "approve" else "rejected"
    return see_other(f"{STAFF}/queue?community_id={registration.community_id}&done={done}")


def _roster_filter(
    community_id: int, status: str | None, q: str | None, skill: str | None
) -> service.RosterFilter:
    return service.RosterFilter(
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
    _, chosen = await _staff_scope(user, community_id)
    filters = _roster_filter(chosen, status, q, skill)
    result = await service.list_registrations(
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
        phone=service.registration_phone,
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
    _, chosen = await _staff_scope(user, community_id)
    content = await reports.roster_xlsx(
        actor=user, filters=_roster_filter(chosen, status, q, skill)
    )
    return xlsx_response("party-roster.xlsx", content)


@router.get("/h5/party/staff/posts")
async def staff_posts(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    term: Annotated[int | None, Query(ge=service.MIN_TERM, le=service.MAX_TERM)] = None,
) -> HTMLResponse:
    return await _staff_posts_page(request, user, community_id, term=term)


async def _staff_posts_page(
    request: Request,
    user: User,
    community_id: int | None,
    *,
    term: int | None = None,
    form: service.PostForm | None = None,
    hours_typed: tuple[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    _, chosen = await _staff_scope(user, community_id)
    term = term or service.current_term()
    views, _ = await service.list_posts(
        viewer=None, page=_ALL, community_id=chosen, term=term, include_closed=True
    )
    served = await service.service_hours(
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
        error=error,
    )


@router.post("/h5/party/staff/posts")
async def staff_create_post(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    term: Annotated[int, Form()],
    title: Annotated[str, Form()] = "",
    kind: Annotated[str, Form(max_length=8)] = "post",
    capacity: Annotated[int, Form(ge=0, le=service.MAX_CAPACITY)] = 0,
    description: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    skills: Annotated[list[str], Form()] = [],  # noqa: B006
    open_from: Annotated[str, Form(max_length=8)] = DEFAULT_HOURS_TYPED[0],
    open_until: Annotated[str, Form(max_length=8)] = DEFAULT_HOURS_TYPED[1],
) -> Response:
    form = service.PostForm(
        community_id=community_id,
        title=title,
        term=term,
        capacity=capacity,
        description=description,
        location=location,
        skills=skills,
        kind=kind,
    )
    try:
        form.open_from, form.open_until = _service_hours(open_from, open_until)
        post = await service.create_post(actor=user, form=form)
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
    post = await service.get_post_for_staff(actor=user, post_id=post_id)
    assignments = await service.list_assignments(actor=user, post_id=post.id)
    members = await service.approved_members(actor=user, community_id=post.community_id)
    records = await service.list_records(
        actor=user, page=PageRequest(limit=20), community_id=post.community_id, post_id=post.id
    )
    names = await service.member_names(
        [a.user_id for a in assignments] + [r.user_id for r in records.items]
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
        records=records.items,
        names=names,
        error=error,
        default_start=_input_value(now.replace(minute=0, second=0, microsecond=0)),
        default_end=_input_value(now.replace(second=0, microsecond=0)),
    )


@router.get("/h5/party/staff/posts/{post_id}")
async def staff_post(request: Request, user: CurrentUser, post_id: int) -> HTMLResponse:
    return await _staff_post_page(request, user, post_id)


@router.post("/h5/party/staff/posts/{post_id}/edit")
async def staff_edit_post(
    request: Request,
    user: CurrentUser,
    post_id: int,
    capacity: Annotated[int | None, Form(ge=0, le=service.MAX_CAPACITY)] = None,
    status: Annotated[str | None, Form(pattern="^(active|closed)$")] = None,
    open_from: Annotated[str | None, Form(max_length=8)] = None,
    open_until: Annotated[str | None, Form(max_length=8)] = None,
) -> Response:
    try:
        hours: dict[str, int] = {}
        if open_from is not None or open_until is not None:
            start, end = _service_hours(open_from or "", open_until or "")
            hours = {"open_from": start, "open_until": end}
        await service.update_post(
            actor=user, post_id=post_id, capacity=capacity, status=status, **hours
        )
    except (Invalid, service.CapacityBelowTaken) as exc:
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
        await service.assign_post(actor=user, post_id=post_id, user_id=user_id)
    except DomainError as exc:
        if isinstance(exc, Forbidden) and not isinstance(exc, service.NotPartyMember):
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
    assignment = await service.remove_assignment(
        actor=user, assignment_id=assignment_id, reason=reason
    )
    return see_other(f"{STAFF}/posts/{assignment.post_id}?done=removed")


@router.get("/h5/party/staff/posts/{post_id}/qr")
async def staff_qr(request: Request, user: CurrentUser, post_id: int) -> HTMLResponse:
    code = await service.checkin_code(actor=user, post_id=post_id)
    post = await service.get_post(post_id=post_id)
    response = await _page(
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
    community_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    user_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    started_at: Annotated[str, Form(max_length=32)],
    ended_at: Annotated[str, Form(max_length=32)],
    post_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    task: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    form = service.OfflineRecordForm(
        user_id=user_id,
        community_id=community_id,
        post_id=post_id,
        task=task,
        started_at=parse_local_datetime(started_at, field="started_at", required=True),
        ended_at=parse_local_datetime(ended_at, field="ended_at", required=True),
        note=note,
    )
    try:
        record = await service.add_offline_record(actor=user, form=form)
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
    _, chosen = await _staff_scope(user, community_id)
    result = await service.list_records(
        actor=user, page=PageRequest(limit=50, cursor=cursor), community_id=chosen, status=status
    )
    names = await service.member_names(r.user_id for r in result.items)
    titles = await service.post_titles(r.post_id for r in result.items)
    members = await service.approved_members(actor=user, community_id=chosen)
    now = clock.now()
    query = {k: v for k, v in (("community_id", chosen), ("status", status)) if v}
    return await _staff_page(
        request,
        user,
        "party/staff_records.html",
        chosen,
        tab="records",
        records=result.items,
        names=names,
        titles=titles,
        members=members,
        status=status,
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
    record = await service.get_record(viewer=user, record_id=record_id)
    if not await accounts_service.is_staff_of(user, record.community_id):
        raise Forbidden("只有本社区的工作人员可以查看")
    audits = await service.record_audits(record=record)
    names = await service.member_names([record.user_id, *(a.actor_id for a in audits)])
    titles = await service.post_titles([record.post_id])
    return await _staff_page(
        request,
        user,
        "party/staff_record.html",
        record.community_id,
        status_code=status_code,
        tab="records",
        record=record,
        audits=audits,
        names=names,
        titles=titles,
        start_value=_input_value(record.started_at),
        end_value=_input_value(record.ended_at or clock.now()),
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
    try:
        await service.correct_record(
            actor=user,
            record_id=record_id,
            started_at=parse_local_datetime(started_at, field="started_at", required=True),
            ended_at=parse_local_datetime(ended_at, field="ended_at", required=True),
            reason=reason,
        )
    except Invalid as exc:
        return await _staff_record_page(
            request, user, record_id, error=describe_error(exc), status_code=422
        )
    return see_other(f"{STAFF}/records/{record_id}?done=corrected")


@router.get("/h5/party/staff/report")
async def staff_report(
    request: Request,
    user: CurrentUser,
    community_id: CommunityParam = None,
    start_date: Annotated[str | None, Query(max_length=10)] = None,
    end_date: Annotated[str | None, Query(max_length=10)] = None,
    scope: Annotated[str | None, Query(pattern="^(community|street)$")] = None,
) -> HTMLResponse:
    _, chosen = await _staff_scope(user, community_id)
    street = scope == "street" and await accounts_service.is_street_admin(user)
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
    _, chosen = await _staff_scope(user, community_id)
    street = scope == "street" and await accounts_service.is_street_admin(user)
    content = await reports.report_xlsx(
        actor=user,
        community_id=None if street else chosen,
        start_date=parse_date(start_date, field="start_date"),
        end_date=parse_date(end_date, field="end_date"),
    )
    return xlsx_response("party-report.xlsx", content)
