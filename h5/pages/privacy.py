"""隐私政策, 导出我的数据 and 注销账号: the person's rights, on the same services as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from backend.core.errors import Invalid
from backend.core.xlsx import xlsx_response
from backend.privacy import service as privacy_service
from backend.privacy.schemas import ExportFormat
from h5.page import page_router
from h5.render import Action, describe_error, render, render_message
from h5.session import CurrentUser, end_session

router = page_router()


@router.get("/h5/privacy")
async def privacy_notice(request: Request) -> HTMLResponse:
    # Public: the notice must be readable before anyone logs in.
    return render(request, "privacy.html")


@router.get("/h5/me/data")
async def my_data(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "account/data.html", sections=privacy_service.SECTIONS)


@router.get("/h5/me/export")
async def export_my_data(
    request: Request, user: CurrentUser, format: Annotated[ExportFormat, Query()] = "xlsx"
) -> Response:
    if format == "json":
        return JSONResponse(
            await privacy_service.export_json(user=user),
            headers={
                "Content-Disposition": 'attachment; filename="linli-my-data.json"',
                "Cache-Control": "no-store",
            },
        )
    filename, data = await privacy_service.export_xlsx(user=user)
    return xlsx_response(filename, data)


def _close_page(
    request: Request, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "account/close.html",
        status_code=status_code,
        error=error,
        confirm_word=privacy_service.CONFIRM_WORD,
    )


@router.get("/h5/me/close")
async def close_account_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return _close_page(request)


@router.post("/h5/me/close")
async def close_account(
    request: Request, user: CurrentUser, confirm: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    try:
        await privacy_service.close_account(user=user, confirm=confirm)
    except Invalid as exc:
        return _close_page(request, error=describe_error(exc), status_code=422)
    response = render_message(
        request,
        title="账号已注销",
        desc="您的个人信息已删除，所有设备上的登录均已退出。感谢您对社区工作的支持。",
        kind="success",
        actions=(Action("查看隐私政策", "/h5/privacy", primary=False),),
    )
    end_session(response)
    return response
