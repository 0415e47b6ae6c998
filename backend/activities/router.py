"""Activities API: publishing, the public list, booking, cancelling, check-in and attendance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from backend.accounts.deps import CallerId, CurrentUser, StaffUser
from backend.activities import attendance, bookings, catalogue, draws, export
from backend.activities.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    AttendanceIn,
    AttendeeOut,
    BookingOut,
    BookingStatus,
    CancelActivityIn,
    CancelledOut,
    Category,
    CheckinCodeOut,
    CheckinIn,
    CheckinOut,
    DrawOut,
    OrgId,
)
from backend.core import xlsx
from backend.core.errors import error_schema, responses
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID
from backend.core.pagination import PageOut, PageParams

router = APIRouter(tags=["activities"])

ActivityId = Annotated[int, Path(ge=1, le=MAX_ID)]
BookingId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post(
    "/activities",
    status_code=201,
    response_model=ActivityOut,
    summary="发布活动（该社区的工作人员或街道管理员）",
    responses=responses(401, 403, 409, 422, 429),
)
async def create_activity(body: ActivityIn, actor: StaffUser, once: Idempotent) -> JSONResponse:
    async def create() -> ActivityOut:
        return ActivityOut.of(await catalogue.create_activity(actor=actor, data=body))

    return await once.run(
        user_id=actor.id, payload=body.model_dump(), status_code=201, action=create
    )


@router.get(
    "/activities",
    response_model=PageOut[ActivityOut],
    summary="活动列表（公开）",
    responses=responses(422, 429),
)
async def list_activities(
    page: PageParams,
    community_id: Annotated[OrgId | None, Query(description="只看某个社区")] = None,
    upcoming: Annotated[bool, Query(description="只看未结束、未取消的活动")] = False,
    category: Annotated[Category | None, Query(description="活动类别")] = None,
    building_id: Annotated[OrgId | None, Query(description="向该楼宇上班族开放的活动")] = None,
) -> PageOut[ActivityOut]:
    result = await catalogue.list_activities(
        page=page,
        community_id=community_id,
        upcoming=upcoming,
        category=category,
        building_id=building_id,
    )
    return ActivityOut.page(result)


@router.get(
    "/activities/{activity_id}",
    response_model=ActivityOut,
    summary="活动详情（公开）：剩余名额与报名状态",
    responses=responses(404, 422, 429),
)
async def get_activity(activity_id: ActivityId) -> ActivityOut:
    return ActivityOut.of(await catalogue.get_activity(activity_id=activity_id))


@router.patch(
    "/activities/{activity_id}",
    response_model=ActivityOut,
    summary="修改活动（时间、地点变更会通知已报名的人）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def update_activity(
    activity_id: ActivityId, body: ActivityPatch, actor: StaffUser
) -> ActivityOut:
    view = await catalogue.update_activity(actor=actor, activity_id=activity_id, patch=body)
    return ActivityOut.of(view)


@router.post(
    "/activities/{activity_id}/cancel",
    response_model=ActivityOut,
    summary="取消活动（所有报名随之取消并通知）",
    responses=responses(401, 403, 404, 422, 429),
)
async def cancel_activity(
    activity_id: ActivityId, body: CancelActivityIn, actor: StaffUser
) -> ActivityOut:
    view = await catalogue.cancel_activity(actor=actor, activity_id=activity_id, reason=body.reason)
    return ActivityOut.of(view)


@router.post(
    "/activities/{activity_id}/bookings",
    status_code=201,
    response_model=BookingOut,
    summary="报名：有名额即报名成功，否则进入候补；抽签活动为登记抽签",
    description=(
        "409：sold_out（名额和候补都已满）、already_booked、booking_not_open、booking_closed、"
        "limit_reached（本月该类活动次数用完）、no_show_blocked、activity_cancelled；"
        "403：not_eligible。"
    ),
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def book_activity(
    activity_id: ActivityId, user_id: CallerId, once: Idempotent
) -> JSONResponse:
    async def book() -> BookingOut:
        return BookingOut.of(await bookings.book_activity(user_id=user_id, activity_id=activity_id))

    return await once.run(user_id=user_id, payload={}, status_code=201, action=book)


@router.get(
    "/activities/{activity_id}/bookings",
    response_model=PageOut[AttendeeOut],
    summary="活动的报名与签到情况（工作人员）",
    responses=responses(401, 403, 404, 422, 429),
)
async def list_activity_bookings(
    activity_id: ActivityId,
    actor: StaffUser,
    page: PageParams,
    status: Annotated[BookingStatus | None, Query()] = None,
) -> PageOut[AttendeeOut]:
    result = await attendance.list_activity_bookings(
        actor=actor, activity_id=activity_id, page=page, status=status
    )
    return AttendeeOut.page(result)


@router.get(
    "/activities/{activity_id}/bookings.xlsx",
    summary="导出活动的报名与签到名单（Excel，工作人员；手机号脱敏）",
    response_class=Response,
    responses={
        200: {"content": {xlsx.MEDIA_TYPE: {}}, "description": "xlsx 文件"},
        **responses(401, 403, 404, 422, 429),
    },
)
async def export_activity_bookings(activity_id: ActivityId, actor: StaffUser) -> Response:
    name, content = await export.export_bookings_xlsx(actor=actor, activity_id=activity_id)
    return xlsx.xlsx_response(name, content)


@router.delete(
    "/bookings/{booking_id}",
    response_model=CancelledOut,
    summary="取消我的报名（名额自动让给第一位候补）",
    description="409：cancel_deadline_passed、not_cancellable；别人的报名为 404。",
    responses=responses(401, 404, 409, 422, 429),
)
async def cancel_booking(booking_id: BookingId, user: CurrentUser) -> CancelledOut:
    booking = await bookings.cancel_booking(user=user, booking_id=booking_id)
    return CancelledOut.of(booking)


@router.get(
    "/me/bookings",
    response_model=PageOut[BookingOut],
    summary="我的报名（最新的在前）",
    responses=responses(401, 422, 429),
)
async def list_my_bookings(
    user: CurrentUser,
    page: PageParams,
    status: Annotated[BookingStatus | None, Query()] = None,
) -> PageOut[BookingOut]:
    result = await bookings.list_my_bookings(user=user, page=page, status=status)
    return BookingOut.page(result)


@router.post(
    "/activities/{activity_id}/checkin-code",
    response_model=CheckinCodeOut,
    summary="当前签到码（工作人员；每 30 秒更换）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def issue_checkin_code(activity_id: ActivityId, actor: StaffUser) -> CheckinCodeOut:
    code = await attendance.issue_checkin_code(actor=actor, activity_id=activity_id)
    return CheckinCodeOut.of(code)


@router.post(
    "/activities/{activity_id}/checkin",
    response_model=CheckinOut,
    summary="签到（报名成功的人，输入或扫描现场签到码）",
    description="409：checkin_code_invalid、checkin_closed、not_booked、activity_cancelled；"
    "429：checkin_locked（输错签到码次数过多，Retry-After 为需等待的秒数）。",
    responses={
        **responses(401, 404, 422),
        409: error_schema(
            "checkin_code_invalid", "checkin_closed", "not_booked", "activity_cancelled"
        ),
        429: error_schema("rate_limited", "checkin_locked"),
    },
)
async def check_in(activity_id: ActivityId, body: CheckinIn, user: CurrentUser) -> CheckinOut:
    awarded = await attendance.check_in(user=user, activity_id=activity_id, code=body.code)
    return CheckinOut.of(awarded)


@router.post(
    "/bookings/{booking_id}/attendance",
    response_model=AttendeeOut,
    summary="登记出勤：已到场或未到场（工作人员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def mark_attendance(
    booking_id: BookingId, body: AttendanceIn, actor: StaffUser
) -> AttendeeOut:
    view = await attendance.mark_attendance(
        actor=actor, booking_id=booking_id, attended=body.status == "attended"
    )
    return AttendeeOut.of(view)


@router.post(
    "/bookings/{booking_id}/excuse",
    response_model=AttendeeOut,
    summary="免责：这次未到场不计入爽约（工作人员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def excuse_no_show(booking_id: BookingId, actor: StaffUser) -> AttendeeOut:
    return AttendeeOut.of(await attendance.excuse_no_show(actor=actor, booking_id=booking_id))


@router.get(
    "/activities/{activity_id}/draw",
    response_model=DrawOut,
    summary="抽签记录：种子、种子哈希与抽签顺序（工作人员）",
    responses=responses(401, 403, 404, 422, 429),
)
async def get_draw(activity_id: ActivityId, actor: StaffUser) -> DrawOut:
    return DrawOut.of(await draws.get_draw(actor=actor, activity_id=activity_id))
