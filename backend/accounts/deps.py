"""FastAPI dependencies that say who may call a route.

`CurrentUser` (bearer token, else the H5 session cookie), `OptionalUser` for public
reads, `StaffUser` and `StreetAdmin` for staff routes, and `CallerId` for a hot route that
must not read the database before it knows there is work to do (the booking rush: a full
class is answered from the Redis gate alone; the service loads the user after it).
Community scope depends on the object, so services check it with
`accounts_service.require_staff_of(user, community_id)`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts import service
from backend.accounts.models import User
from backend.accounts.service import TokenKind
from backend.core.errors import Forbidden, Unauthenticated
from backend.core.ratelimit import limit_user

SESSION_COOKIE = service.SESSION_COOKIE

_bearer = HTTPBearer(auto_error=False, description="小程序登录得到的 token")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="H5 登录会话")

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SessionCookie = Annotated[str | None, Depends(_cookie)]


def _credential(bearer: BearerCredentials, session: SessionCookie) -> tuple[str, TokenKind] | None:
    """The bearer token wins over the H5 session cookie."""
    if bearer is not None:
        return bearer.credentials, "access"
    if session:
        return session, "session"
    return None


async def _user_from_request(bearer: BearerCredentials, session: SessionCookie) -> User | None:
    credential = _credential(bearer, session)
    if credential is None:
        return None
    token, kind = credential
    return await service.authenticate(token=token, kind=kind)


async def current_user(bearer: BearerCredentials, session: SessionCookie) -> User:
    """The logged-in user (401 otherwise), counted against the per-user rate limit."""
    try:
        user = await _user_from_request(bearer, session)
    except Unauthenticated as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    if user is None:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    await limit_user(user.id)
    return user


async def optional_user(bearer: BearerCredentials, session: SessionCookie) -> User | None:
    """The logged-in user, or None: a stale credential on a public read is just anonymous."""
    try:
        user = await _user_from_request(bearer, session)
    except Unauthenticated:
        return None
    if user is not None:
        await limit_user(user.id)
    return user


async def caller_id(bearer: BearerCredentials, session: SessionCookie) -> int:
    """The id the caller's token was issued to, checked like `current_user` but without
    loading the user (401 when forged, expired or missing), rate limited the same way."""
    credential = _credential(bearer, session)
    if credential is None:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    token, kind = credential
    try:
        uid = service.token_user_id(token=token, kind=kind)
    except Unauthenticated as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    await limit_user(uid)
    return uid


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
CallerId = Annotated[int, Depends(caller_id)]


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
