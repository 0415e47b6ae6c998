"""Privacy API: a copy of the caller's data, and closing the account (注销)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from backend.accounts.deps import CurrentUser
from backend.core.errors import responses
from backend.core.xlsx import MEDIA_TYPE, xlsx_response
from backend.privacy import service
from backend.privacy.schemas import CloseAccountIn, CloseAccountOut, ExportFormat, ExportOut

router = APIRouter(tags=["privacy"])


@router.get(
    "/me/export",
    response_model=ExportOut,
    summary="导出我的数据：个人资料、身份、角色、报到、服务记录、报名、心愿、积分、订阅与消息",
    responses={
        **responses(401, 422, 429),
        200: {
            "description": "format=json 为 JSON，format=xlsx 为 Excel 文件（每部分一个工作表）",
            "content": {MEDIA_TYPE: {}},
        },
    },
)
async def export_my_data(
    user: CurrentUser, format: Annotated[ExportFormat, Query()] = "json"
) -> Response:
    if format == "xlsx":
        filename, data = await service.export_xlsx(user=user)
        return xlsx_response(filename, data)
    return JSONResponse(await service.export_json(user=user), headers={"Cache-Control": "no-store"})


@router.delete(
    "/me",
    response_model=CloseAccountOut,
    summary="注销账号：个人信息删除，登录立即失效，历史记录以匿名形式保留（不可恢复）",
    description="422：invalid（confirm 须为“注销”）；"
    "403：cross_origin（以 H5 会话从其他网站发起）。",
    responses=responses(401, 422, 429),
)
async def close_my_account(body: CloseAccountIn, user: CurrentUser) -> CloseAccountOut:
    return CloseAccountOut(closed_at=await service.close_account(user=user, confirm=body.confirm))
