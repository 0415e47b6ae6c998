"""活动报名 pages for staff: publishing and editing an activity, cancelling it, attendance,
the rotating check-in QR code, the export and the draw record. The form becomes the API's
own model (`build(ActivityIn, ...)`) and goes to the same verbs as the API."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import attendance, catalogue, draws, export
from backend.activities.models import AUDIENCES, CATEGORIES
from backend.activities.schemas import ActivityIn, ActivityPatch, CancelActivityIn
from backend.activities.views import ActivityView
from backend.core import checkin
from backend.core.clock import clock
from backend.core.errors import Invalid
from backend.core.ids import optional_org_id
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.core.xlsx import xlsx_response
from backend.orgs import service as orgs_service
from h5.forms import build, collect, max_length, parse_local_datetime
from h5.page import page_router, see_other
from h5.pages.activities import DONE_MESSAGES, local, page
from h5.render import describe_error
from h5.scope import staff_scope
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)
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


# --- the form ---


def _blank_values() -> dict[str, Any]:
    return {"audience": ["resident"], "building_ids": [], "mode": "first_come"}


def _values_of(view: ActivityView) -> dict[str, Any]:
    a = view.activity
    values: dict[str, Any] = {f: getattr(a, f) for f in FORM_FIELDS}
    for field in TIME_INPUTS:
        values[field] = local(getattr(a, field), "%Y-%m-%dT%H:%M")
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
    scope = await staff_scope(user, refuse="只有社区工作人员可以发布活动")
    return await page(
        request,
        user,
        "activities/form.html",
        values=values,
        activity_id=activity_id,
        communities=scope.communities,
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
    community = str(form.get("community_id") or "")
    community_id = collect(errors, optional_org_id, community, field="community_id")
    if community_id is not None:
        data["community_id"] = community_id
    for key in ("capacity", "waitlist_capacity", "points"):
        raw = str(form.get(key) or "").strip()
        if raw:
            # A number too long for any limit stays text: the model refuses it by name.
            data[key] = int(raw) if raw.isdigit() and len(raw) < 10 else raw
    for key in TIME_INPUTS:
        moment = collect(errors, parse_local_datetime, form.get(key), field=key)
        if moment is not None:
            data[key] = moment
    data["audience"] = list(form.get("audience") or [])
    data["building_ids"] = [int(b) for b in form.get("building_ids") or [] if b.isdigit()]
    data["high_demand"] = bool(form.get("high_demand"))
    return data


async def _form_data(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {
        **{k: v for k, v in form.items() if k not in ("audience", "building_ids")},
        "audience": form.getlist("audience"),
        "building_ids": form.getlist("building_ids"),
    }


def _shown(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What the form shows again after a refusal: what was typed, the lists as parsed."""
    return {**raw, "audience": values["audience"], "building_ids": values["building_ids"]}


@router.get("/h5/activities/new")
async def new_activity(request: Request, user: CurrentUser) -> HTMLResponse:
    return await _form(request, user, values=_blank_values())


@router.post("/h5/activities/new")
async def create_activity(request: Request, user: CurrentUser) -> Response:
    raw = await _form_data(request)
    errors: dict[str, str] = {}
    values = _parse_form(raw, errors)
    try:
        data = build(ActivityIn, values, errors)
        view = await catalogue.create_activity(actor=user, data=data)
    except Invalid as exc:
        return await _form(
            request,
            user,
            values=_shown(raw, values),
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"/h5/activities/{view.activity.id}?done=created")


@router.get("/h5/activities/{activity_id}/edit")
async def edit_activity(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    view = await catalogue.get_activity(activity_id=activity_id)
    await accounts_service.require_staff_of(user, view.activity.community_id)
    return await _form(request, user, values=_values_of(view), activity_id=activity_id)


@router.post("/h5/activities/{activity_id}/edit")
async def save_activity(request: Request, user: CurrentUser, activity_id: int) -> Response:
    raw = await _form_data(request)
    errors: dict[str, str] = {}
    values = _parse_form(raw, errors)
    values.pop("community_id", None)
    try:
        patch = build(ActivityPatch, values, errors)
        await catalogue.update_activity(actor=user, activity_id=activity_id, patch=patch)
    except Invalid as exc:
        return await _form(
            request,
            user,
            values=_shown(raw, values),
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
    reason: Annotated[str, Form(max_length=max_length(CancelActivityIn, "reason"))] = "",
) -> Response:
    await catalogue.cancel_activity(actor=user, activity_id=activity_id, reason=reason)
    return see_other(f"/h5/activities/{activity_id}?done=activity_cancelled")


# --- attendance, QR, export, draw ---


@router.get("/h5/activities/{activity_id}/attendance")
async def attendance_sheet(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    done: Annotated[str, Query(max_length=32)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    bookings = await attendance.list_activity_bookings(
        actor=user, activity_id=activity_id, page=PageRequest(limit=MAX_LIMIT, cursor=cursor)
    )
    view = await catalogue.get_activity(activity_id=activity_id)
    return await page(
        request,
        user,
        "activities/attendance.html",
        view=view,
        bookings=bookings,
        started=clock.now() >= view.activity.starts_at - attendance.CHECKIN_OPENS_BEFORE,
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
    view = await attendance.mark_attendance(
        actor=user, booking_id=booking_id, attended=status == "attended"
    )
    return see_other(f"/h5/activities/{view.booking.activity_id}/attendance?done=marked")


@router.post("/h5/bookings/{booking_id}/excuse")
async def excuse(request: Request, user: CurrentUser, booking_id: int) -> Response:
    view = await attendance.excuse_no_show(actor=user, booking_id=booking_id)
    return see_other(f"/h5/activities/{view.booking.activity_id}/attendance?done=marked")


@router.get("/h5/activities/{activity_id}/qr")
async def qr_display(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    code = await attendance.issue_checkin_code(actor=user, activity_id=activity_id)
    view = await catalogue.get_activity(activity_id=activity_id)
    response = await page(
        request,
        user,
        "activities/qr.html",
        view=view,
        code=code.code,
        qr=checkin.qr_svg(code.url),
        expires_at=code.expires_at,
    )
    # The browser reloads when this code rotates (every 30 s): no script needed.
    seconds = max(1, math.ceil((code.expires_at - clock.now()).total_seconds()))
    response.headers["Refresh"] = str(seconds)
    return response


@router.get("/h5/activities/{activity_id}/export.xlsx")
async def export_xlsx(user: CurrentUser, activity_id: int) -> Response:
    name, content = await export.export_bookings_xlsx(actor=user, activity_id=activity_id)
    return xlsx_response(name, content)


@router.get("/h5/activities/{activity_id}/draw")
async def draw_record(request: Request, user: CurrentUser, activity_id: int) -> HTMLResponse:
    record = await draws.get_draw(actor=user, activity_id=activity_id)
    view = await catalogue.get_activity(activity_id=activity_id)
    return await page(request, user, "activities/draw.html", view=view, record=record)
