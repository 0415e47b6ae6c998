"""FastAPI dependencies that say who may call a route.

`CurrentUser` (bearer token, else the H5 session cookie), `OptionalUser` for public
reads, `StaffUser` and `StreetAdmin` for staff routes, and `CallerId` for a hot route that
must not read the database before it knows there is work to do (the booking rush: a full
class is answered from the Redis gate alone; the service loads the user after it).
Community scope depends on the object, so services check it with
`accounts_service.require_staff_of(user, community_id)`.

A browser sends the H5 session cookie with any request to this site, including one a
page of another site makes it send; so an unsafe request (POST, PUT, PATCH, DELETE)
authenticated by that cookie must come from this site's own pages (`Origin`, else
`Referer`), or it is refused with 403 `cross_origin`. A bearer token is never sent by the
browser on its own, so bearer requests are not checked.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts import service
from backend.accounts.models import User
from backend.accounts.service import Caller, TokenKind
from backend.core.config import get_settings
from backend.core.errors import Forbidden, Unauthenticated
from backend.core.ratelimit import limit_user

SESSION_COOKIE = service.SESSION_COOKIE
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ENVELOPE = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
}

_bearer = HTTPBearer(auto_error=False, description="小程序登录得到的 token")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="H5 登录会话")

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SessionCookie = Annotated[str | None, Depends(_cookie)]


class CrossOrigin(Forbidden):
    code = "cross_origin"
    message = "请求来自其他网站，已被拒绝。请在邻里页面内操作"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _check_same_origin(request: Request) -> None:
    """CrossOrigin unless the request names this site (public address or own host) as its
    origin. A request naming neither Origin nor Referer is refused too: browsers send Origin
    on every unsafe request, so only a forged or stripped one lacks both."""
    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    origin = _origin(claimed) if claimed != "null" else None
    allowed = {_origin(get_settings().public_base_url)}
    host = request.headers.get("host")
    if host:
        # Behind the proxy the request's own scheme and Host are this site's address.
        allowed.add(f"{request.url.scheme}://{host.lower()}")
    if origin is None or origin not in allowed:
        raise CrossOrigin()


def document_cross_origin(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with `cross_origin` among the 403 answers of every unsafe
    operation that accepts the H5 session cookie (the refusal above answers for them all)."""
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method.upper() in _SAFE_METHODS or not isinstance(operation, dict):
                continue
            if not any("APIKeyCookie" in scheme for scheme in operation.get("security", [])):
                continue
            answers = operation.setdefault("responses", {})
            refused = answers.setdefault("403", {**_ENVELOPE, "description": "错误：cross_origin"})
            if "cross_origin" not in refused.get("description", ""):
                refused["description"] = refused.get("description", "错误：") + ", cross_origin"
    return schema


def _credential(
    request: Request, bearer: BearerCredentials, session: SessionCookie
) -> tuple[str, TokenKind] | None:
    """The bearer token wins over the H5 session cookie; a cookie on an unsafe request must
    come from this site."""
    if bearer is not None:
        return bearer.credentials, "access"
    if session:
        if request.method not in _SAFE_METHODS:
            _check_same_origin(request)
        return session, "session"
    return None


async def _user_from_request(
    request: Request, bearer: BearerCredentials, session: SessionCookie
) -> User | None:
    credential = _credential(request, bearer, session)
    if credential is None:
        return None
    token, kind = credential
    return await service.authenticate(token=token, kind=kind)


async def current_user(request: Request, bearer: BearerCredentials, session: SessionCookie) -> User:
    """The logged-in user (401 otherwise), counted against the per-user rate limit."""
    try:
        user = await _user_from_request(request, bearer, session)
    except Unauthenticated as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    if user is None:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    await limit_user(user.id)
    return user


async def optional_user(
    request: Request, bearer: BearerCredentials, session: SessionCookie
) -> User | None:
    """The logged-in user, or None: a stale credential on a public read is just anonymous."""
    try:
        user = await _user_from_request(request, bearer, session)
    except Unauthenticated:
        return None
    if user is not None:
        await limit_user(user.id)
    return user


async def caller_id(request: Request, bearer: BearerCredentials, session: SessionCookie) -> Caller:
    """The id the caller's token was issued to, checked like `current_user` but without
    loading the user (401 when forged, expired or missing), rate limited the same way. The
    token version travels with the id for the service to compare once it reads the user."""
    credential = _credential(request, bearer, session)
    if credential is None:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    token, kind = credential
    try:
        uid, version = service.read_token(token=token, kind=kind)
    except Unauthenticated as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    await limit_user(uid)
    return Caller(uid, version)


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
CallerId = Annotated[Caller, Depends(caller_id)]


async def staff_user(user: CurrentUser) -> User:
    """A staff member of some community or a street admin (the service checks which community)."""
    if not await service.is_staff_anywhere(user):
        raise Forbidden("只有社区工作人员可以进行此操作")
    return user


async def street_admin(user: CurrentUser) -> User:
    """A street admin (403 otherwise)."""
    await service.require_street_admin(user)
    return user


StaffUser = Annotated[User, Depends(staff_user)]
StreetAdmin = Annotated[User, Depends(street_admin)]
