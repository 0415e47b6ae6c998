"""The route class of every H5 page: CSRF on every form post, HTML errors, login redirects.

Later pages get all of it by building their router with `page_router()`:

    router = page_router()

    @router.post("/h5/wishes/{wish_id}/claim")
    async def claim(request: Request, wish_id: int, user: CurrentUser) -> Response:
        await wishes_service.claim_wish(user=user, wish_id=wish_id)
        return see_other(f"/h5/wishes/{wish_id}")

A DomainError raised by the service comes back as a page with its Chinese message and
the error's status; a form that wants to show the message inline catches it and
re-renders with `error=describe_error(exc)`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from backend.core.errors import DomainError, Invalid
from backend.core.text import CONTROL_MESSAGE, has_forbidden
from h5 import csrf
from h5.render import render_error
from h5.session import LoginRequired, login_redirect

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# How the page names a refused field to the person who typed it (others by their key).
_LABELS = {
    "nickname": "昵称",
    "name": "姓名",
    "title": "标题",
    "body": "正文",
    "description": "介绍",
    "location": "地点",
    "address": "居住楼栋",
    "work_unit": "工作单位",
    "party_org": "所在党组织",
    "party_org_contact": "党组织联系人",
    "skills_note": "其他特长",
    "available_note": "服务时间说明",
    "reason": "原因",
    "note": "备注",
    "task": "服务事项",
    "pickup_place": "领取地点",
    "q": "搜索内容",
}


def _refused(name: str) -> Invalid:
    return Invalid(fields={name: f"{_LABELS.get(name, f'“{name}”')}{CONTROL_MESSAGE}"})


async def refuse_unsafe_text(request: Request) -> None:
    """Invalid naming the first query parameter or form field that holds a character no
    stored or exported text may hold (uploaded files are not text)."""
    for name, value in request.query_params.multi_items():
        if has_forbidden(value):
            raise _refused(name)
    if request.method in _SAFE_METHODS:
        return
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return
    # Starlette keeps the parsed form on the request, so the handler reads this same one.
    form = await request.form()
    for name, value in form.multi_items():
        if isinstance(value, str) and has_forbidden(value):
            raise _refused(name)


class PageRoute(APIRoute):
    """An H5 page route: CSRF-checked, answering errors with Chinese pages instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                if request.method not in _SAFE_METHODS:
                    await csrf.verify_request(request)
                await refuse_unsafe_text(request)
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except DomainError as exc:
                return render_error(request, exc)
            except RequestValidationError:
                return render_error(request, Invalid())
            except HTTPException as exc:
                # e.g. a malformed multipart body: still a page, not the API's JSON envelope.
                if exc.status_code >= 500:
                    raise
                return render_error(request, Invalid("提交的内容无法识别，请返回重试"))

        return page_handler


def page_router() -> APIRouter:
    """A router for H5 pages (kept out of the OpenAPI document, which describes the API)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def see_other(path: str) -> RedirectResponse:
    """Redirect after a successful form post (POST → GET, so a reload does not resubmit)."""
    return RedirectResponse(path, status_code=303)
