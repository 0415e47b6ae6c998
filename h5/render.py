"""Rendering pages: the Jinja2 environment, static URLs, and Chinese error pages.

Every page goes through `render`, which adds the CSRF token and the security headers.
A DomainError becomes a page with its Chinese message (`render_error`), never a 500.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from backend.core.clock import local_text
from backend.core.errors import DomainError
from h5 import csrf

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/h5/static"

# Inline styles and scripts are refused: a field that slipped past escaping cannot run.
# WeUI draws its icons with data: URIs, hence img-src data:.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    # Pages carry personal data and CSRF tokens: no shared or back-button caches.
    "Cache-Control": "no-store",
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

templates = Jinja2Templates(directory=TEMPLATES_DIR)


@lru_cache(maxsize=64)
def static_url(path: str) -> str:
    """URL of a file under h5/static with a content hash, so it can be cached for a year."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{path}?v={digest}"


templates.env.globals["static_url"] = static_url
# Every page shows stored times the same way: `{{ local(moment) }}`.
templates.env.globals["local"] = local_text


class CachedStaticFiles(StaticFiles):
    """StaticFiles with long cache headers (every link carries a content hash)."""

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render `template` with the CSRF token (as `csrf_token`) and the page security headers."""
    context.update(request=request, csrf_token=csrf.token_for(request), csrf_field=csrf.FIELD)
    response = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )
    csrf.remember_seed(request, response)
    return response


def _reasons(exc: DomainError) -> str:
    return "；".join(dict.fromkeys((exc.fields or {}).values()))


def describe_error(exc: DomainError) -> str:
    """The Chinese sentence to show for `exc` (e.g. in a form's error bar), with field reasons."""
    reasons = _reasons(exc)
    return f"{exc.message}：{reasons}" if reasons else exc.message


@dataclass(frozen=True)
class Action:
    """A button on a message page."""

    label: str
    href: str
    primary: bool = True


HOME_ACTION = Action("返回首页", "/h5/")


def render_message(
    request: Request,
    *,
    title: str,
    desc: str = "",
    kind: Literal["success", "info", "warn", "waiting"] = "info",
    actions: tuple[Action, ...] = (HOME_ACTION,),
    status_code: int = 200,
) -> HTMLResponse:
    """A full-page WeUI message (result, notice or error) with buttons."""
    return render(
        request,
        "message.html",
        status_code=status_code,
        title=title,
        desc=desc,
        kind=kind,
        actions=actions,
    )


def render_error(
    request: Request, exc: DomainError, *, actions: tuple[Action, ...] = (HOME_ACTION,)
) -> HTMLResponse:
    """The page for a DomainError: its Chinese message, with the error's HTTP status."""
    response = render_message(
        request,
        title=exc.message,
        desc=_reasons(exc),
        kind="warn",
        actions=actions,
        status_code=exc.status_code,
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response
