"""The three ways a message leaves: mini-program subscribe message, official-account
template message (both through wechatpy, with the shared token) and the WeCom group robot.

Every failure comes out as a ChannelError whose `kind` tells the relay what to do:
- "transient": network, HTTP 5xx, -1 system busy, a token WeChat refuses even after one
  refresh → retry with backoff;
- "quota": 45009, the app's daily quota is used up → try again tomorrow;
- "refused": 43101, the user refused this message → never again on this channel;
- "rejected": any other errcode (bad openid, template, data) → retrying cannot help.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from backend.accounts.wechat import api_client
from backend.core.config import Settings
from backend.core.redis import get_kv
from bot.tokens import TokenKeeper, TokenUnavailable

log = logging.getLogger("linli.bot.channels")

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
TRANSIENT_ERRCODES = frozenset({-1, 45011})
QUOTA_ERRCODE = 45009
REFUSED_ERRCODE = 43101
WECOM_TIMEOUT_SECONDS = 5.0
# wechatpy blocks: its calls run on threads of their own, this many at once per relay (the
# default executor has only a handful of threads for the whole process).
SEND_THREADS = 16
# The group robot answers 45009 for its per-minute limit (20 a minute), not a daily quota.
WECOM_TRANSIENT_ERRCODES = frozenset({-1, 45009})


class ChannelError(Exception):
    def __init__(self, kind: str, detail: str, *, errcode: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.errcode = errcode


def _classify(errcode: int | None, detail: str) -> ChannelError:
    if errcode is None or errcode in TRANSIENT_ERRCODES or errcode in TOKEN_ERRCODES:
        return ChannelError("transient", detail, errcode=errcode)
    if errcode == QUOTA_ERRCODE:
        return ChannelError("quota", detail, errcode=errcode)
    if errcode == REFUSED_ERRCODE:
        return ChannelError("refused", detail, errcode=errcode)
    return ChannelError("rejected", detail, errcode=errcode)


async def pace(app_id: str, per_second: int) -> None:
    """Wait until `app_id` may make one more send this second (counted across processes)."""
    if per_second <= 0:
        return
    while True:
        now = time.time()
        second = int(now)
        try:
            count = await get_kv().incr(f"send-rate:{app_id}:{second}", ttl=2)
        except Exception:
            return  # The store is an accelerator: WeChat's own limits still answer.
        if count <= per_second:
            return
        await asyncio.sleep(second + 1 - now)


class Channels:
    """Sends rendered messages; one instance per relay (holds an HTTP client)."""

    def __init__(self, settings: Settings, tokens: TokenKeeper | None = None) -> None:
        self.settings = settings
        self.tokens = tokens or TokenKeeper(settings)
        self._http = httpx.AsyncClient(timeout=WECOM_TIMEOUT_SECONDS)
        # app id -> (token, client): one client, and so one pool of keep-alive connections,
        # per app for as long as its token lives.
        self._clients: dict[str, tuple[str, WeChatClient]] = {}
        self._threads = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="linli-wechat")

    async def aclose(self) -> None:
        await self._http.aclose()
        for _, client in self._clients.values():
            client._http.close()
        self._clients.clear()
        self._threads.shutdown(wait=False)

    async def send_subscribe(
        self, *, openid: str, template_id: str, data: dict[str, Any], page: str | None
    ) -> None:
        await self._wechat(
            self.settings.mp_appid,
            self.settings.mp_secret,
            lambda client: client.wxa.send_subscribe_message(openid, template_id, data, page=page),
        )

    async def send_template(
        self, *, openid: str, template_id: str, data: dict[str, Any], url: str | None
    ) -> None:
        await self._wechat(
            self.settings.oa_appid,
            self.settings.oa_secret,
            lambda client: client.message.send_template(openid, template_id, data, url=url),
        )

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the official account's custom menu."""
        await self._wechat(
            self.settings.oa_appid,
            self.settings.oa_secret,
            lambda client: client.menu.create(menu),
        )

    async def send_wecom(self, *, key: str, markdown: str) -> None:
        url = self.settings.wecom_webhook_base.rstrip("/") + "/cgi-bin/webhook/send"
        body = {"msgtype": "markdown", "markdown": {"content": markdown}}
        try:
            response = await self._http.post(url, params={"key": key}, json=body)
        except httpx.HTTPError as exc:
            raise ChannelError("transient", f"wecom: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ChannelError("transient", f"wecom: HTTP {response.status_code}")
        try:
            result = response.json()
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise ChannelError("rejected", f"wecom: HTTP {response.status_code}, not JSON")
        errcode = result.get("errcode", 0)
        if errcode == 0:
            return
        kind = "transient" if errcode in WECOM_TRANSIENT_ERRCODES else "rejected"
        raise ChannelError(kind, f"wecom: {errcode} {result.get('errmsg', '')}", errcode=errcode)

    async def _wechat(self, app_id: str, secret: str, call: Callable[[WeChatClient], Any]) -> None:
        """Run `call` with the shared token; on a token error refresh it once and retry once."""
        await pace(app_id, self.settings.wechat_sends_per_second)
        token = await self._token(app_id, stale=None)
        try:
            await self._call(app_id, secret, token, call)
            return
        except ChannelError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            log.info("token rejected (%s) for %s: refreshing once", exc.errcode, app_id)
        token = await self._token(app_id, stale=token)
        await self._call(app_id, secret, token, call)

    async def _token(self, app_id: str, *, stale: str | None) -> str:
        try:
            if stale is None:
                return await self.tokens.get(app_id)
            return await self.tokens.refresh(app_id, stale=stale)
        except TokenUnavailable as exc:
            raise ChannelError("transient", f"token: {exc}", errcode=exc.errcode) from exc

    def _client(self, app_id: str, secret: str, token: str) -> WeChatClient:
        cached = self._clients.get(app_id)
        if cached is not None and cached[0] == token:
            return cached[1]
        client = api_client(self.settings, appid=app_id, secret=secret, access_token=token)
        # As many keep-alive connections as threads that may use them at once.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=SEND_THREADS)
        for scheme in ("http://", "https://"):
            client._http.mount(scheme, adapter)
        # Trusting the environment, requests stats ~/.netrc and re-reads the proxy and CA
        # variables on every call, a visible share of a fan-out's CPU: read them once here.
        environment = client._http.merge_environment_settings(
            self.settings.wechat_api_base, {}, None, None, None
        )
        client._http.trust_env = False
        client._http.proxies = environment["proxies"]
        client._http.verify = environment["verify"]
        self._clients[app_id] = (token, client)
        return client

    async def _call(
        self, app_id: str, secret: str, token: str, call: Callable[[WeChatClient], Any]
    ) -> None:
        client = self._client(app_id, secret, token)
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._threads, call, client)
        except WeChatClientException as exc:
            raise _classify(exc.errcode, f"wechat: {exc.errcode} {exc.errmsg}") from exc
        except requests.RequestException as exc:
            raise ChannelError("transient", f"wechat: {type(exc).__name__}") from exc
        if not isinstance(result, dict):
            raise ChannelError("transient", "wechat: answer was not JSON")
