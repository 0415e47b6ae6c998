"""在职党员报到 pages for members: report-in, my status, posts and claims, my service, QR
check-in (the staff workbench is h5/pages/party_staff.py). Every rule lives in
backend.party; these handlers only parse and render."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import local_text
from backend.core.config import get_settings
from backend.core.errors import Invalid
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.orgs import service as orgs_service
from backend.party import hours, names, posts, records, registrations
from backend.party.exceptions import AlreadyRegistered
from backend.party.models import REGISTRATION_STATUS_NAMES, TIME_SLOTS
from backend.party.schemas import RegistrationIn
from backend.party.views import PostView, clock_text, opening_hours
from backend.party.views import hours as hours_text
from h5.forms import build, collect, max_length
from h5.page import page_router, see_other
from h5.render import describe_error, render
from h5.session import CurrentUser

router = page_router()

ALL = PageRequest(limit=MAX_LIMIT)
BASE = "/h5/party"
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
CommunityParam = Annotated[int | None, Query(ge=1, le=MAX_ORG_ID)]


async def party_page(
    request: Request, user: User, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A party page with what every party template reads (names, times, hours)."""
    return render(
        request,
        template,
        status_code=status_code,
        is_staff=await accounts_service.is_staff_anywhere(user),
        local=local_text,
        hours=hours_text,
        opening_hours=opening_hours,
        clock_text=clock_text,
        status_names=REGISTRATION_STATUS_NAMES,
        record_status_names=RECORD_STATUS_NAMES,
        source_names=SOURCE_NAMES,
        assignment_status_names=ASSIGNMENT_STATUS_NAMES,
        done_message=DONE_MESSAGES.get(request.query_params.get("done", "")),
        **context,
    )


@router.get("/h5/party")
async def hub(request: Request, user: CurrentUser) -> HTMLResponse:
    registration = await registrations.my_registration(user=user)
    assignments = [a for a in await posts.my_assignments(user=user) if a.status == "active"]
    mine = await records.my_service(user=user, page=PageRequest(limit=1))
    titles = await names.post_titles(a.post_id for a in assignments)
    communities = await names.community_names([registration.community_id] if registration else [])
    return await party_page(
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
    form: dict[str, Any] | None = None,
    community_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    communities = (await orgs_service.list_communities(page=ALL)).items
    community_id = (form["community_id"] if form else community_id) or user.community_id
    offered: list[PostView] = []
    if community_id:
        offered, _ = await posts.list_posts(
            viewer=None, page=ALL, community_id=community_id, kind="post"
        )
    current = await registrations.my_registration(user=user)
    return await party_page(
        request,
        user,
        "party/register.html",
        status_code=status_code,
        tab="home",
        communities=communities,
        community_id=community_id,
        posts=offered,
        form=form,
        current=current,
        skills=get_settings().party_skills,
        time_slots=TIME_SLOTS,
        limit=partial(max_length, RegistrationIn),
        error=error,
    )


@router.get("/h5/party/register")
async def register_form(
    request: Request, user: CurrentUser, community_id: CommunityParam = None
) -> HTMLResponse:
    return await _register_page(request, user, community_id=community_id)


@router.post("/h5/party/register")
async def register(
    request: Request,
    user: CurrentUser,
    # Text limits are RegistrationIn's, so its message names the field on the form.
    community_id: Annotated[int | None, Form(ge=1, le=MAX_ORG_ID)] = None,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    work_unit: Annotated[str, Form()] = "",
    party_org: Annotated[str, Form()] = "",
    party_org_contact: Annotated[str, Form()] = "",
    party_org_phone: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    skills: Annotated[list[str], Form()] = [],  # noqa: B006
    skills_note: Annotated[str, Form()] = "",
    preferred_post_ids: Annotated[list[int], Form()] = [],  # noqa: B006
    available_times: Annotated[list[str], Form()] = [],  # noqa: B006
    available_note: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "name": name,
        "phone": phone,
        "work_unit": work_unit,
        "party_org": party_org,
        "community_id": community_id,
        "party_org_contact": party_org_contact,
        "party_org_phone": party_org_phone,
        "address": address,
        "skills": skills,
        "skills_note": skills_note,
        "preferred_post_ids": preferred_post_ids,
        "available_times": available_times,
        "available_note": available_note,
    }
    errors: dict[str, str] = {}
    # The service's reading of the number, so a short one says what a wrong one says.
    collect(errors, registrations.mobile, phone, field="phone")
    try:
        data = build(RegistrationIn, {k: v for k, v in form.items() if v is not None}, errors)
        await registrations.register(user=user, data=data)
    except (Invalid, AlreadyRegistered) as exc:
        return await _register_page(
            request, user, form=form, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"{BASE}?done=registered")


@router.post("/h5/party/withdraw")
async def withdraw(request: Request, user: CurrentUser) -> Response:
    await registrations.withdraw_registration(user=user)
    return see_other(f"{BASE}?done=withdrawn")


@router.get("/h5/party/posts")
async def posts_page(
    request: Request, user: CurrentUser, community_id: CommunityParam = None
) -> HTMLResponse:
    registration = await registrations.my_registration(user=user)
    active = registration if registration and registration.active_key else None
    community_id = community_id or (active.community_id if active else user.community_id)
    views: list[PostView] = []
    if community_id:
        views, _ = await posts.list_posts(viewer=user, page=ALL, community_id=community_id)
    communities = (await orgs_service.list_communities(page=ALL)).items
    return await party_page(
        request,
        user,
        "party/posts.html",
        tab="posts",
        registration=active,
        community_id=community_id,
        communities=communities,
        suggested=[v for v in views if v.suggested and v.post.kind == "post"],
        views=views,
        term=hours.current_term(),
    )


@router.post("/h5/party/posts/{post_id}/claim")
async def claim(request: Request, user: CurrentUser, post_id: int) -> Response:
    await posts.claim_post(user=user, post_id=post_id)
    return see_other(f"{BASE}/posts?done=claimed")


@router.post("/h5/party/posts/{post_id}/release")
async def release(request: Request, user: CurrentUser, post_id: int) -> Response:
    await posts.release_post(user=user, post_id=post_id)
    return see_other(f"{BASE}/posts?done=released")


@router.get("/h5/party/service")
async def my_service(
    request: Request,
    user: CurrentUser,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    mine = await records.my_service(user=user, page=PageRequest(limit=30, cursor=cursor))
    titles = await names.post_titles(r.post_id for r in mine.page.items)
    return await party_page(
        request, user, "party/service.html", tab="service", mine=mine, titles=titles
    )


@router.get("/h5/party/checkin")
async def checkin_page(
    request: Request,
    user: CurrentUser,
    post: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    code: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    view = await posts.view_post(viewer=user, post_id=post) if post else None
    open_here = await records.open_record_at(user=user, post_id=post) if post else None
    mine = await records.my_service(user=user, page=PageRequest(limit=1))
    return await party_page(
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
        await records.check_in(user=user, post_id=post_id, code=code)
        return see_other(f"{BASE}/checkin?post={post_id}&done=checked_in")
    record = await records.check_out(user=user, post_id=post_id, code=code)
    done = "expired" if record.status == "expired" else "checked_out"
    return see_other(f"{BASE}/service?done={done}")
