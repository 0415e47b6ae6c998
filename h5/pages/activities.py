"""活动报名 pages for residents: the list, a class's seats and the book / waitlist / cancel
buttons, my bookings, check-in (the staff's pages are in activities_staff.py). Every rule
lives in backend.activities; these handlers only parse and render."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import attendance, bookings, catalogue
from backend.activities.models import CANCELLABLE_STATUSES, CATEGORIES, LIVE_STATUSES
from backend.activities.schemas import ActivityIn, CancelActivityIn, CheckinIn
from backend.activities.views import STATUS_NAMES
from backend.core.clock import local_text
from backend.core.errors import DomainError, Invalid
from backend.core.pagination import PageRequest
from h5.forms import max_length
from h5.page import page_router, see_other
from h5.render import Action, describe_error, render, render_message
from h5.session import CurrentUser

router = page_router()

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
# The boxes' maxlength, from the models that check what is typed into them.
LIMITS = {
    "title": max_length(ActivityIn, "title"),
    "location": max_length(ActivityIn, "location"),
    "description": max_length(ActivityIn, "description"),
    "reason": max_length(CancelActivityIn, "reason"),
}


def local(value: datetime | None, fmt: str = "%m月%d日 %H:%M") -> str:
    return local_text(value, fmt)


async def page(request: Request, user: User, template: str, **context: Any) -> HTMLResponse:
    """An activities page (residents' and staff's) with the labels every template uses."""
    status_code = context.pop("status_code", 200)
    return render(
        request,
        template,
        status_code=status_code,
        user=user,
        is_staff=await accounts_service.is_staff_anywhere(user),
        status_names=STATUS_NAMES,
        state_labels=STATE_LABELS,
        audience_labels=AUDIENCE_LABELS,
        local=local,
        limits=LIMITS,
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
    activities = await catalogue.list_activities(
        page=PageRequest(cursor=cursor),
        upcoming=show != "all",
        category=category or None,
        building_id=user.building_id if my_building else None,
    )
    return await page(
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
    mine = await bookings.list_my_bookings(user=user, page=PageRequest(cursor=cursor))
    return await page(request, user, "activities/mine.html", tab="mine", bookings=mine)


async def _detail(
    request: Request,
    user: User,
    activity_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = await catalogue.get_activity(activity_id=activity_id)
    mine = await bookings.get_my_booking(user=user, activity_id=activity_id)
    return await page(
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
        view = await bookings.book_activity(user_id=user.id, activity_id=activity_id)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _detail(
            request, user, activity_id, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"/h5/activities/{activity_id}?done={view.booking.status}")


@router.post("/h5/bookings/{booking_id}/cancel")
async def cancel_booking(request: Request, user: CurrentUser, booking_id: int) -> Response:
    booking = await bookings.cancel_booking(user=user, booking_id=booking_id)
    return see_other(f"/h5/activities/{booking.activity_id}?done=cancelled")


@router.get("/h5/activities/{activity_id}/checkin")
async def checkin_page(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    code: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    view = await catalogue.get_activity(activity_id=activity_id)
    return await page(request, user, "activities/checkin.html", view=view, code=code)


@router.post("/h5/activities/{activity_id}/checkin")
async def checkin_submit(
    request: Request,
    user: CurrentUser,
    activity_id: int,
    code: Annotated[str, Form(max_length=max_length(CheckinIn, "code"))] = "",
) -> HTMLResponse:
    try:
        awarded = await attendance.check_in(user=user, activity_id=activity_id, code=code)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        view = await catalogue.get_activity(activity_id=activity_id)
        return await page(
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
