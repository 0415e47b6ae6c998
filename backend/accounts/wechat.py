"""wechatpy clients whose every URL starts at `settings.wechat_api_base`.

wechatpy spreads the WeChat host over several places: `WeChatClient.API_BASE_URL`,
each API group's own `API_BASE_URL` (`client.wxa` among them), the host written into
`fetch_access_token`, and `WeChatOAuth.API_BASE_URL`. Moving only one of them sends the
rest of the traffic to the real WeChat, so these factories move all of them.

wechatpy is synchronous: call these functions through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import WeChatClientException, WeChatException
from wechatpy.oauth import WeChatOAuth

from backend.core.config import WECHAT_API_BASE, Settings

log = logging.getLogger("linli.wechat")

TIMEOUT_SECONDS = 5.0
_UPSTREAM_BASE = WECHAT_API_BASE + "/"


def _moved(url: str, api_base: str) -> str:
    if url.startswith(_UPSTREAM_BASE):
        return api_base.rstrip("/") + "/" + url[len(_UPSTREAM_BASE) :]
    return url


class WeChatApiClient(WeChatClient):
    """wechatpy's WeChatClient with its own and every API group's base URL moved.

    `auto_retry` is off: wechatpy refreshes the token on 40001/42001 without a lock, and
    several processes doing that invalidate each other's tokens, so the caller decides.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        api_base: str,
        access_token: str | None = None,
        session: Any = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            appid,
            secret,
            access_token=access_token,
            session=session,
            timeout=timeout,
            auto_retry=False,
        )
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = _moved(WeChatClient.API_BASE_URL, self.api_base)
        # The API groups are instance attributes set by wechatpy's __new__; reading them
        # from vars() avoids touching the `access_token` property, which would fetch one.
        for api in vars(self).values():
            if isinstance(api, BaseWeChatAPI) and getattr(api, "API_BASE_URL", None):
                api.API_BASE_URL = _moved(api.API_BASE_URL, self.api_base)

    def fetch_access_token(self) -> dict[str, Any]:
        # Upstream has https://api.weixin.qq.com and the plain `cgi-bin/token` written into this
        # call; every plain fetch ends the token the bot is sending with. The stable interface
        # is kept apart from it and hands out the same token until it is due.
        response = self._http.post(
            f"{self.api_base}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": False,
            },
            timeout=self.timeout,
        )
        try:
            response.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(
                errcode=None, errmsg=None, client=self, request=exc.request, response=exc.response
            ) from exc
        result = self._handle_result(response)
        expires_in = result.get("expires_in", 7200)
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in
        return result


class _CodeToSessionClient(WeChatApiClient):
    @property
    def access_token(self) -> None:
        # code2session authenticates with appid + secret. Returning None keeps wechatpy from
        # fetching an access token per login, which would race the bot's shared token
        # (requests drops None-valued query parameters).
        return None


class _OAuth(WeChatOAuth):
    def __init__(self, *args: Any, api_base: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.API_BASE_URL = _moved(WeChatOAuth.API_BASE_URL, api_base)

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)  # upstream waits forever
        return super()._request(method, url_or_endpoint, **kwargs)


class WeChatLoginError(Exception):
    """WeChat refused the code, answered nonsense or could not be reached."""


class WeChatUnavailable(WeChatLoginError):
    """WeChat could not be reached or answered something that is not a valid answer: the
    person did nothing wrong, so this is reported apart from a refused code."""


@dataclass(frozen=True)
class WeChatIdentityInfo:
    openid: str
    unionid: str | None


# WeChat's openids and unionids are 28-character URL-safe strings; anything else (longer
# than a column, spaces, control characters) is not an answer we store or log.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SESSION_KEY = re.compile(r"[A-Za-z0-9+/=]{1,128}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")


def api_client(settings: Settings, *, appid: str, secret: str, **kwargs: Any) -> WeChatApiClient:
    """A WeChatClient for `appid` talking to `settings.wechat_api_base`."""
    return WeChatApiClient(appid, secret, api_base=settings.wechat_api_base, **kwargs)


def oauth_client(settings: Settings, *, redirect_uri: str = "", state: str = "") -> WeChatOAuth:
    """The official account's OAuth (snsapi_base) client, API calls moved to the configured base."""
    return _OAuth(
        settings.oa_appid,
        settings.oa_secret,
        redirect_uri,
        scope="snsapi_base",
        state=state,
        api_base=settings.wechat_api_base,
    )


def _malformed(source: str, what: str) -> WeChatUnavailable:
    log.warning("wechat %s answered a malformed %s", source, what)
    return WeChatUnavailable(f"{source}: malformed {what}")


def _check(result: Any, source: str, name: str, pattern: re.Pattern[str], *, required: bool) -> Any:
    value = result.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _malformed(source, name)
    return value


def _identity(result: Any, source: str) -> WeChatIdentityInfo:
    if not isinstance(result, dict):
        raise _malformed(source, "answer")
    openid = _check(result, source, "openid", _ID, required=True)
    unionid = _check(result, source, "unionid", _ID, required=False)
    return WeChatIdentityInfo(openid=openid, unionid=unionid)


def _failure(source: str, exc: Exception) -> WeChatLoginError:
    errcode = getattr(exc, "errcode", None)
    # Never log the code itself: it is a one-time credential.
    log.warning("wechat %s failed", source, extra={"status": errcode or type(exc).__name__})
    if isinstance(exc, WeChatException) and isinstance(errcode, int) and errcode:
        return WeChatLoginError(f"{source}: {errcode}")
    # No errcode: the HTTP call failed, or the answer could not be read.
    return WeChatUnavailable(f"{source}: {errcode or type(exc).__name__}")


# What a malformed answer makes wechatpy raise while it reads it (a list where a dict was
# expected, a missing key, an errcode that is not a number, a body that is not JSON).
_READ_ERRORS = (WeChatException, requests.RequestException, ValueError, KeyError, TypeError)


def code_to_session(settings: Settings, code: str) -> WeChatIdentityInfo:
    """Mini-program `wx.login` code → identity (blocking); the answer is checked field by
    field before anything of it is used."""
    client = _CodeToSessionClient(
        settings.mp_appid, settings.mp_secret, api_base=settings.wechat_api_base
    )
    source = "code2session"
    try:
        result = client.wxa.code_to_session(code)
    except _READ_ERRORS as exc:
        raise _failure(source, exc) from exc
    info = _identity(result, source)
    _check(result, source, "session_key", _SESSION_KEY, required=True)
    return info


def oauth_code_to_identity(settings: Settings, code: str) -> WeChatIdentityInfo:
    """Official-account OAuth code → identity (blocking); the answer is checked field by
    field before anything of it is used."""
    source = "oauth2/access_token"
    try:
        result = oauth_client(settings).fetch_access_token(code)
    except _READ_ERRORS as exc:
        raise _failure(source, exc) from exc
    info = _identity(result, source)
    _check(result, source, "access_token", _TOKEN, required=True)
    expires_in = result.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise _malformed(source, "expires_in")
    return info
