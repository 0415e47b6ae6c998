"""Who is booking: the caller's user id from a verified token, without a database read.

The booking route must be able to answer "full" from the Redis gate alone when hundreds
press 报名 in the same second, so it does not load the user before it knows there is a
place to compete for; the service loads them after the gate. The token is checked exactly
as `CurrentUser` checks it (signature, expiry, bearer before the H5 session cookie), and
the per-user rate limit applies.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts import service as accounts_service
from backend.core.errors import Unauthenticated
from backend.core.ratelimit import limit_user
from backend.core.security import verify_token

_bearer = HTTPBearer(auto_error=False, description="小程序登录得到的 token")
_cookie = APIKeyCookie(
    name=accounts_service.SESSION_COOKIE, auto_error=False, description="H5 登录会话"
)


async def booking_caller(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_cookie)],
) -> int:
    """The id the caller's token was issued to (401 when forged, expired or missing)."""
    if bearer is not None:
        payload = verify_token(bearer.credentials, salt="access")
    elif session:
        payload = verify_token(session, salt="session")
    else:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    uid = payload.get("uid") if payload else None
    if not isinstance(uid, int):
        raise Unauthenticated("登录已失效，请重新登录", headers={"WWW-Authenticate": "Bearer"})
    await limit_user(uid)
    return uid


CallerId = Annotated[int, Depends(booking_caller)]
