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
from h5 import csrf
from h5.render import render_error
from h5.session import LoginRequired, login_redirect

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PageRoute(APIRoute):
    """An H5 page route: CSRF-checked, answering errors with Chinese pages instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                if request.method not in _SAFE_METHODS:
                    await csrf.verify_request(request)
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
