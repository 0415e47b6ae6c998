"""CSRF tokens for H5 forms: signed, and bound to the browser's session cookie.

Before login there is no session yet, so a random pre-login cookie plays its part (the
demo-persona form needs a token too). The token carries only a hash of that cookie:
the cookie itself is HttpOnly and must never appear in a page.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

from backend.accounts import service as accounts_service
from backend.core.config import get_settings
from backend.core.errors import Forbidden
from backend.core.security import constant_time_equals, random_token, sign_token, verify_token
from h5.session import cookies_secure

FIELD = "csrf_token"
ANON_COOKIE = "linli_anon"
_SALT = "h5-csrf"
_ANON_TTL_SECONDS = 24 * 3600


class CsrfRejected(Forbidden):
    code = "csrf_failed"
    message = "页面已过期或来源不明，请返回上一页刷新后重试"


def _binding(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _seed(request: Request) -> str | None:
    return (
        request.cookies.get(accounts_service.SESSION_COOKIE)
        or request.cookies.get(ANON_COOKIE)
        or getattr(request.state, "csrf_new_anon", None)
    )


def token_for(request: Request) -> str:
    """The token to put in this page's forms (creating the pre-login cookie when needed)."""
    seed = _seed(request)
    if seed is None:
        seed = request.state.csrf_new_anon = random_token()
    return sign_token(
        {"b": _binding(seed)}, ttl_seconds=get_settings().session_ttl_seconds, salt=_SALT
    )


def remember_seed(request: Request, response: Response) -> None:
    """Set the pre-login cookie on `response` if `token_for` had to create one."""
    anon = getattr(request.state, "csrf_new_anon", None)
    if anon is not None:
        response.set_cookie(
            ANON_COOKIE,
            anon,
            max_age=_ANON_TTL_SECONDS,
            path="/h5/",
            httponly=True,
            samesite="lax",
            secure=cookies_secure(request),
        )


async def verify_request(request: Request) -> None:
    """CsrfRejected unless the posted form carries a valid token for this browser."""
    form = await request.form()
    token = form.get(FIELD)
    seed = request.cookies.get(accounts_service.SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)
    payload = verify_token(token, salt=_SALT) if isinstance(token, str) and seed else None
    if payload is None or not isinstance(payload.get("b"), str):
        raise CsrfRejected()
    if not constant_time_equals(payload["b"], _binding(seed)):
        raise CsrfRejected()
