"""Notices API: staff publish, preview, cancel and follow notices; anyone reads published
ones; the caller records mini-program subscribe-message consents."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from backend.accounts.deps import CurrentUser, OptionalUser, StaffUser
from backend.core.errors import responses
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import PageParams
from backend.notices import consents, service
from backend.notices.deps import MessageRenderer
from backend.notices.schemas import (
    DeliveryOut,
    NoticeDetailOut,
    NoticeIn,
    NoticePage,
    PreviewOut,
    SubscriptionIn,
    SubscriptionOut,
)

router = APIRouter(tags=["notices"])

NoticeId = Annotated[int, Path(ge=1, le=MAX_ID)]
CommunityFilter = Annotated[
    int | None, Query(ge=1, le=MAX_ORG_ID, description="某社区的通知（含全街道通知）")
]
StatusFilter = Annotated[
    Literal["published", "scheduled", "cancelled", "all"],
    Query(description="published（公开）；scheduled、cancelled、all 仅工作人员"),
]


@router.post(
    "/notices",
    status_code=201,
    response_model=NoticeDetailOut,
    summary="发布通知（立即或定时；由机器人分批推送）",
    responses=responses(401, 403, 409, 422, 429),
)
async def create_notice(body: NoticeIn, actor: StaffUser, once: Idempotent) -> JSONResponse:
    async def create() -> NoticeDetailOut:
        return NoticeDetailOut.of(await service.create_notice(actor=actor, data=body))

    return await once.run(
        user_id=actor.id, payload=body.model_dump(mode="json"), status_code=201, action=create
    )


@router.post(
    "/notices/preview",
    response_model=PreviewOut,
    summary="预览通知：微信消息字段、群机器人内容与收件人数（不保存）",
    responses=responses(401, 403, 422, 429),
)
async def preview_notice(body: NoticeIn, actor: StaffUser, render: MessageRenderer) -> PreviewOut:
    return PreviewOut.of(await service.preview_notice(actor=actor, render=render, data=body))


@router.get(
    "/notices",
    response_model=NoticePage,
    summary="通知列表（最新的在前）",
    responses=responses(401, 403, 404, 422, 429),
)
async def list_notices(
    page: PageParams,
    user: OptionalUser,
    community_id: CommunityFilter = None,
    status: StatusFilter = "published",
) -> NoticePage:
    result = await service.list_notices(
        page=page, community_id=community_id, status=status, viewer=user
    )
    return NoticePage.of(result)


@router.get(
    "/notices/{notice_id}",
    response_model=NoticeDetailOut,
    summary="通知详情",
    responses=responses(404, 422, 429),
)
async def get_notice(notice_id: NoticeId, user: OptionalUser) -> NoticeDetailOut:
    return NoticeDetailOut.of(await service.get_notice(notice_id=notice_id, viewer=user))


@router.get(
    "/notices/{notice_id}/delivery",
    response_model=DeliveryOut,
    summary="通知发送情况：已发送、待发送、失败（按原因）",
    responses=responses(401, 403, 404, 422, 429),
)
async def get_delivery(notice_id: NoticeId, actor: CurrentUser) -> DeliveryOut:
    counts = await service.delivery_counts(actor=actor, notice_id=notice_id)
    return DeliveryOut.of(notice_id, counts)


@router.post(
    "/notices/{notice_id}/cancel",
    response_model=NoticeDetailOut,
    summary="取消定时通知（发布时间之前）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def cancel_notice(notice_id: NoticeId, actor: CurrentUser) -> NoticeDetailOut:
    return NoticeDetailOut.of(await service.cancel_notice(actor=actor, notice_id=notice_id))


@router.post(
    "/me/subscriptions",
    response_model=SubscriptionOut,
    summary="记录小程序订阅消息授权（每次同意可发一条消息）",
    responses=responses(401, 409, 422, 429),
)
async def record_subscription(
    body: SubscriptionIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def record() -> SubscriptionOut:
        remaining = await consents.record_consent(
            user_id=user.id, template_key=body.template_key, accepted=body.accepted
        )
        return SubscriptionOut.of(body.template_key, remaining)

    return await once.run(
        user_id=user.id, payload=body.model_dump(), status_code=200, action=record
    )
