"""Who is looking at a page: the session cookie, the login redirect and the OAuth `state`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.config import get_settings
from backend.core.errors import Forbidden, Unauthenticated
from backend.core.ratelimit import limit_user
from backend.core.security import constant_time_equals, random_token, sign_token, verify_token

SESSION_COOKIE = accounts_service.SESSION_COOKIE
OAUTH_COOKIE = "linli_oauth"
OAUTH_CALLBACK_PATH = "/h5/auth/callback"
HOME_PATH = "/h5/"
_OAUTH_SALT = "h5-oauth-state"
# Long enough to read WeChat's authorization page, short enough that a leaked cookie is useless.
_OAUTH_TTL_SECONDS = 600


class LoginRequired(Exception):
    """The page needs a logged-in user; PageRoute answers with a redirect to the login flow."""


class OAuthStateInvalid(Forbidden):
    code = "oauth_state_invalid"
    message = "登录请求已失效，请关闭页面后重新进入"


async def page_user(request: Request) -> User:
    """The user of the session cookie, counted against the per-user rate limit."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    try:
        user = await accounts_service.authenticate(token=token, kind="session")
    except Unauthenticated as exc:
        raise LoginRequired() from exc
    await limit_user(user.id)
    return user


CurrentUser = Annotated[User, Depends(page_user)]


async def session_user(request: Request) -> User | None:
    """The user of a still valid session cookie, or None (logging out needs no live session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return await accounts_service.authenticate(token=token, kind="session")
    except Unauthenticated:
        return None


def safe_next(value: str | None) -> str:
    """`value` when it is a path of these pages, else the home page (no open redirect)."""
    if not value or len(value) > 512 or "\\" in value or any(ord(c) < 0x20 for c in value):
        return HOME_PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path + "/").startswith(HOME_PATH):
        return HOME_PATH
    return value


def login_redirect(request: Request) -> RedirectResponse:
    """Send the visitor to the login flow, coming back here afterwards (GET pages only)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = here if request.method == "GET" else HOME_PATH
    response = RedirectResponse(
        "/h5/login?" + urlencode({"next": safe_next(target)}),
        status_code=302 if request.method == "GET" else 303,
    )
    if request.cookies.get(SESSION_COOKIE):
        end_session(response)
    return response


def is_wecom(request: Request) -> bool:
    """企业微信's browser: its user agent says MicroMessenger too, but an official account's
    OAuth does not work in it (WeChat refuses the page), so it must not be sent there."""
    return "wxwork" in request.headers.get("user-agent", "").lower()


def is_wechat(request: Request) -> bool:
    agent = request.headers.get("user-agent", "").lower()
    return "micromessenger" in agent and not is_wecom(request)


def cookies_secure(request: Request) -> bool:
    """Whether cookies carry `Secure`: when the public address is https, even if a proxy in
    front forgot X-Forwarded-Proto, or when this request itself came over https."""
    return get_settings().public_base_url.startswith("https://") or request.url.scheme == "https"


def start_session(request: Request, response: Response, user: User) -> None:
    """Log the browser in as `user` with a signed HttpOnly cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        accounts_service.issue_session_token(user_id=user.id, token_version=user.token_version),
        max_age=get_settings().session_ttl_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def oauth_redirect(request: Request, next_path: str) -> RedirectResponse:
    """Redirect to WeChat's authorization page with a fresh `state` remembered in a cookie."""
    state = random_token(16)
    redirect_uri = get_settings().public_base_url.rstrip("/") + OAUTH_CALLBACK_PATH
    response = RedirectResponse(
        accounts_service.oauth_authorize_url(redirect_uri=redirect_uri, state=state),
        status_code=302,
    )
    response.set_cookie(
        OAUTH_COOKIE,
        sign_token(
            {"state": state, "next": next_path}, ttl_seconds=_OAUTH_TTL_SECONDS, salt=_OAUTH_SALT
        ),
        max_age=_OAUTH_TTL_SECONDS,
        path=OAUTH_CALLBACK_PATH,
        httponly=True,
        # Lax still sends it on WeChat's top-level redirect back to the callback.
        samesite="lax",
        secure=cookies_secure(request),
    )
    return response


def take_oauth_state(request: Request, state: str | None) -> str:
    """The `next` path stored with `state`; OAuthStateInvalid unless this browser started it."""
    cookie = request.cookies.get(OAUTH_COOKIE)
    payload = verify_token(cookie, salt=_OAUTH_SALT) if cookie else None
    expected = payload.get("state") if payload else None
    if not state or not isinstance(expected, str) or not constant_time_equals(expected, state):
        raise OAuthStateInvalid()
    return safe_next(payload.get("next"))


def forget_oauth_state(response: Response) -> None:
    response.delete_cookie(OAUTH_COOKIE, path=OAUTH_CALLBACK_PATH, httponly=True, samesite="lax")
