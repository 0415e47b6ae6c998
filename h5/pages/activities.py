"""活动报名 pages: the list, a class's seats and the book / waitlist / cancel buttons, my
bookings, check-in; for staff the form, attendance, the rotating QR code and the export.
Every rule lives in backend.activities; these handlers only parse and render."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import service as activities_service
from backend.activities.models import (
    AUDIENCES,
    CANCELLABLE_STATUSES,
    CATEGORIES,
    LIVE_STATUSES,
)
from backend.activities.schemas import ActivityIn, ActivityPatch
from backend.core import checkin
from backend.core.clock import clock, local_text
from backend.core.config import get_settings
from backend.core.errors import DomainError, Forbidden, Invalid
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.core.xlsx import xlsx_response
from backend.orgs import service as orgs_service
from h5.forms import collect, parse_local_datetime
from h5.page import page_router, see_other
from h5.render import Action, describe_error, render, render_message
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)
AUDIENCE_LABELS = {"resident": "社区居民", "party_member": "在职党员", "worker": "楼宇白领"}
STATE_LABELS = {"not_open": "未开始报名", "open": "报名中", "closed": "报名已截止"}
DONE_MESSAGES = {
    "confirmed": "已报名，记得准时参加",
    "waitlisted": "已进入候补，有人取消时按顺序递补并通知您",
    "entered": "已登记抽签，报名截止后公开抽签",
    "cancelled": "已取消报名",
    "created": "活动已发布",
    "saved": "已保存修改",
    "activity_cancelled": "活动已取消，已通知所有报名者",
    "marked": "已登记",
}
FORM_LABELS = {
    "title": "活动名称",
    "category": "类别",
    "description": "介绍",
    "location": "地点",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "capacity": "名额",
    "waitlist_capacity": "候补名额",
    "booking_opens_at": "报名开始",
    "booking_closes_at": "报名截止",
    "cancel_deadline": "取消截止",
    "audience": "面向人群",
    "building_ids": "限定楼宇",
    "points": "签到积分",
    "mode": "报名方式",
    "community_id": "社区",
}
FORM_FIELDS = (
    "title",
    "category",
    "description",
    "location",
    "capacity",
    "waitlist_capacity",
    "points",
    "mode",
    "high_demand",
    "community_id",
)
TIME_INPUTS = ("starts_at", "ends_at", "booking_opens_at", "booking_closes_at", "cancel_deadline")


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def _local(value: datetime | None, fmt: str = "%m月%d日 %H:%M") -> str:
    return local_text(value, fmt)


async def _page(request: Request, user: User, template: str, **context: Any) -> HTMLResponse:
    status_code = context.pop("status_code", 200)
    return render(
        request,
        template,
        status_code=status_code,
        user=user,
        is_staff=await accounts_service.is_staff_anywhere(user),
        status_names=activities_service.STATUS_NAMES,
        state_labels=STATE_LABELS,
        audience_labels=AUDIENCE_LABELS,
        local=_local,
        **context,
    )


# --- residents ---


@router.get("/h5/activities")
async def activity_list(
    request: Request,
    user: CurrentUser,
    category: Annotated[str, Query(max_length=16)] = "",
    show: Annotated[str, Query(max_length=16)] = "upcoming",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    if category and category not in CATEGORIES:
        raise Invalid("筛选条件不正确", fields={"category": "没有这个类别"})
    my_building = show == "building" and user.building_id is not None
    activities = await activities_service.list_activities(
        page=PageRequest(cursor=cursor),
        upcoming=show != "all",
        category=category or None,
        building_id=user.building_id if my_building else None,
    )
    return await _page(
        request,
        user,
        "activities/list.html",
        tab="list",
        activities=activities,
        categories=CATEGORIES,
        filters={"category": category, "show": show},
    )


@router.get("/h5/activities/mine")
async def my_bookings(
    request: Request,
    user: CurrentUser,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    bookings = await activities_service.list_my_bookings(user=user, page=PageRequest(cursor=cursor))
    return await _page(request, user, "activities/mine.html", tab="mine", bookings=bookings)


async def _detail(
    request: Request,
    user: User,
    activity_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = await activities_service.get_activity(activity_id=activity_id)
    mine = await activities_service.get_my_booking(user=user, activity_id=activity_id)
    return await _page(
        request,
        user,
        "activities/detail.html",
        view=view,
        mine=mine,
        holds_place=mine is not None and mine.booking.status in LIVE_STATUSES,
        can_cancel=mine is not None and mine.booking.status in CANCELLABLE_STATUSES,
        manages=await accounts_service.is_staff_of(user, view.activity.community_id),
        done=DONE_MESSAGES.get(done or ""),
        error=error,
        status_code=status_code,
    )


@router.get("/h5/activities/new")
async def new_activity(request: Request, user: CurrentUser) -> HTMLResponse:
    return await _form(request, user, values=_blank_values())


@router.get("/h5/activities/{activity_id}")
async def activity_detail(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    done: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    return await _detail(request, user, activity_id, done=done)


@router.post("/h5/activities/{activity_id}/book")
async def book(request: Request, user: CurrentUser, activity_id: int) -> Response:
    try:
        view = await activities_service.book_activity(user_id=user.id, activity_id=activity_id)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _detail(
            request, user, activity_id, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"/h5/activities/{activity_id}?done={view.booking.status}")


@router.post("/h5/bookings/{booking_id}/cancel")
async def cancel_booking(request: Request, user: CurrentUser, booking_id: int) -> Response:
    booking = await activities_service.cancel_booking(user=user, booking_id=booking_id)
    return see_other(f"/h5/activities/{booking.activity_id}?done=cancelled")


@router.get("/h5/activities/{activity_id}/checkin")
async def checkin_page(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    code: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    view = await activities_service.get_activity(activity_id=activity_id)
    return await _page(request, user, "activities/checkin.html", view=view, code=code)


@router.post("/h5/activities/{activity_id}/checkin")
async def checkin_submit(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    code: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    try:
        awarded = await activities_service.check_in(user=user, activity_id=activity_id, code=code)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        view = await activities_service.get_activity(activity_id=activity_id)
        return await _page(
            request,
            user,
            "activities/checkin.html",
            view=view,
            code=code,
            error=describe_error(exc),
            status_code=exc.status_code,
        )
    return render_message(
        request,
        title="签到成功",
        desc=f"获得 {awarded} 积分，欢迎参加！" if awarded else "您已签到，欢迎参加！",
        kind="success",
        actions=(
            Action("返回活动", f"/h5/activities/{activity_id}"),
            Action("我的报名", "/h5/activities/mine", primary=False),
        ),
    )


# --- staff: the form ---


def _blank_values() -> dict[str, Any]:
    return {"audience": ["resident"], "building_ids": [], "mode": "first_come"}


def _values_of(view: activities_service.ActivityView) -> dict[str, Any]:
    a = view.activity
    values: dict[str, Any] = {f: getattr(a, f) for f in FORM_FIELDS}
    for field in TIME_INPUTS:
        values[field] = _local(getattr(a, field), "%Y-%m-%dT%H:%M")
    values.update(audience=view.audience, building_ids=view.building_ids)
    return values


async def _form(
    request: Request,
    user: User,
    *,
    values: dict[str, Any],
    activity_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    allowed = await accounts_service.staff_community_ids(user)
    if allowed is not None and not allowed:
        raise Forbidden("只有社区工作人员可以发布活动")
    communities = [
        c
        for c in (await orgs_service.list_communities(page=_ALL)).items
        if allowed is None or c.id in allowed
    ]
    return await _page(
        request,
        user,
        "activities/form.html",
        values=values,
        activity_id=activity_id,
        communities=communities,
        buildings=(await orgs_service.list_buildings(page=_ALL)).items,
        categories=CATEGORIES,
        audiences=AUDIENCES,
        error=error,
        status_code=status_code,
    )


def _parse_form(form: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in ("title", "category", "description", "location", "mode"):
        if form.get(key) is not None:
            data[key] = str(form[key]).strip()
    for key in ("capacity", "waitlist_capacity", "points", "community_id"):
        raw = str(form.get(key) or "").strip()
        if raw:
            data[key] = int(raw) if raw.isdigit() and len(raw) < 10 else raw
    for key in TIME_INPUTS:
        moment = collect(errors, parse_local_datetime, form.get(key), field=key)
        if moment is not None:
            data[key] = moment
    data["audience"] = list(form.get("audience") or [])
    data["building_ids"] = [int(b) for b in form.get("building_ids") or [] if b.isdigit()]
    data["high_demand"] = bool(form.get("high_demand"))
    return data


def _invalid(exc: ValidationError) -> Invalid:
    fields = {}
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else "body"
        label = FORM_LABELS.get(key, key)
        if err["type"] in ("text_control", "moment_window", "date_window"):
            fields.setdefault(key, f"{label}{err['msg']}")
        else:
            fields.setdefault(key, f"{label}填写不正确")
    return Invalid(fields=fields)


async def _form_data(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {
        **{k: v for k, v in form.items() if k not in ("audience", "building_ids")},
        "audience": form.getlist("audience"),
        "building_ids": form.getlist("building_ids"),
    }


@router.post("/h5/activities/new")
async def create_activity(request: Request, user: CurrentUser) -> Response:
    raw = await _form_data(request)
    errors: dict[str, str] = {}
    values = _parse_form(raw, errors)
    try:
        if errors:
            raise Invalid(fields=errors)
        try:
            data = ActivityIn.model_validate(values)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        view = await activities_service.create_activity(actor=user, data=data)
    except Invalid as exc:
        shown = {**raw, "audience": values["audience"], "building_ids": values["building_ids"]}
        return await _form(request, user, values=shown, error=describe_error(exc), status_code=422)
    return see_other(f"/h5/activities/{view.activity.id}?done=created")


@router.get("/h5/activities/{activity_id}/edit")
async def edit_activity(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    view = await activities_service.get_activity(activity_id=activity_id)
    await accounts_service.require_staff_of(user, view.activity.community_id)
    return await _form(request, user, values=_values_of(view), activity_id=activity_id)


@router.post("/h5/activities/{activity_id}/edit")
async def save_activity(request: Request, user: CurrentUser, activity_id: int) -> Response:
    raw = await _form_data(request)
    errors: dict[str, str] = {}
    values = _parse_form(raw, errors)
    values.pop("community_id", None)
    try:
        if errors:
            raise Invalid(fields=errors)
        try:
            patch = ActivityPatch.model_validate(values)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        await activities_service.update_activity(actor=user, activity_id=activity_id, patch=patch)
    except Invalid as exc:
        shown = {**raw, "audience": values["audience"], "building_ids": values["building_ids"]}
        return await _form(
            request,
            user,
            values=shown,
            activity_id=activity_id,
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"/h5/activities/{activity_id}?done=saved")


@router.post("/h5/activities/{activity_id}/cancel")
async def cancel_activity(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    await activities_service.cancel_activity(actor=user, activity_id=activity_id, reason=reason)
    return see_other(f"/h5/activities/{activity_id}?done=activity_cancelled")


# --- staff: attendance, QR, export, draw ---


@router.get("/h5/activities/{activity_id}/attendance")
async def attendance(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    done: Annotated[str, Query(max_length=32)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    bookings = await activities_service.list_activity_bookings(
        actor=user, activity_id=activity_id, page=PageRequest(limit=MAX_LIMIT, cursor=cursor)
    )
    view = await activities_service.get_activity(activity_id=activity_id)
    return await _page(
        request,
        user,
        "activities/attendance.html",
        view=view,
        bookings=bookings,
        started=clock.now() >= view.activity.starts_at - activities_service.CHECKIN_OPENS_BEFORE,
        done=DONE_MESSAGES.get(done),
    )


@router.post("/h5/bookings/{booking_id}/attendance")
async def mark_attendance(
    request: Request,
    user: CurrentUser,
    booking_id: int,
    status: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    if status not in ("attended", "no_show"):
        raise Invalid(fields={"status": "取值不在允许范围内"})
    view = await activities_service.mark_attendance(
        actor=user, booking_id=booking_id, attended=status == "attended"
    )
    return see_other(f"/h5/activities/{view.booking.activity_id}/attendance?done=marked")


@router.post("/h5/bookings/{booking_id}/excuse")
async def excuse(request: Request, user: CurrentUser, booking_id: int) -> Response:
    view = await activities_service.excuse_no_show(actor=user, booking_id=booking_id)
    return see_other(f"/h5/activities/{view.booking.activity_id}/attendance?done=marked")


@router.get("/h5/activities/{activity_id}/qr")
async def qr_display(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    code, expires_at = await activities_service.issue_checkin_code(
        actor=user, activity_id=activity_id
    )
    url = activities_service.checkin_url(activity_id, code)
    view = await activities_service.get_activity(activity_id=activity_id)
    response = await _page(
        request,
        user,
        "activities/qr.html",
        view=view,
        code=code,
        qr=checkin.qr_svg(url),
        expires_at=expires_at,
    )
    # The browser reloads when this code rotates (every 30 s): no script needed.
    seconds = max(1, math.ceil((expires_at - clock.now()).total_seconds()))
    response.headers["Refresh"] = str(seconds)
    return response


@router.get("/h5/activities/{activity_id}/export.xlsx")
async def export_xlsx(user: CurrentUser, activity_id: int) -> Response:
    name, content = await activities_service.export_bookings_xlsx(
        actor=user, activity_id=activity_id
    )
    return xlsx_response(name, content)


@router.get("/h5/activities/{activity_id}/draw")
async def draw_record(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    record = await activities_service.get_draw(actor=user, activity_id=activity_id)
    view = await activities_service.get_activity(activity_id=activity_id)
    return await _page(request, user, "activities/draw.html", view=view, record=record)
