"""One WeChat access token per app id, shared by every process through the key-value store.

Tokens come from WeChat's stable interface (`cgi-bin/stable_token`), kept apart from the
plain `cgi-bin/token`, whose every fetch ends the previous token: another system on the same
account cannot knock ours out. Still, one process fetches at a time: a refresh happens under
a lock (`SET NX` with a TTL); the others wait and re-read. A
caller that got 40001/42001 passes the token it used as `stale`, so a token someone
already replaced is not fetched again. When the store does not answer, no token is fetched
(that would knock out the other processes' token): the last one known is used, and without
one KeyValueUnavailable tells the relay to try the message again later.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx

from backend.core.config import Settings
from backend.core.redis import KeyValueUnavailable, get_kv

log = logging.getLogger("linli.bot.tokens")

STABLE_TOKEN_PATH = "/cgi-bin/stable_token"
LOCK_TTL_SECONDS = 15.0
WAIT_SECONDS = 12.0
POLL_SECONDS = 0.05
FETCH_TIMEOUT_SECONDS = 5.0
# Refresh a while before WeChat's expiry so no send carries a token about to die.
EXPIRY_MARGIN_SECONDS = 300
# How long a process reuses the shared token without asking the store again: a token another
# process replaced in between still works (WeChat keeps the old one for 5 minutes), and a
# 40001 sends the caller to `refresh`, which reads the new one.
LOCAL_SECONDS = 30.0


class TokenUnavailable(Exception):
    """No token could be had now (WeChat unreachable, busy or refusing): try again later."""

    def __init__(self, detail: str, errcode: int | None = None) -> None:
        super().__init__(detail)
        self.errcode = errcode


def token_key(app_id: str) -> str:
    return f"wechat:token:{app_id}"


def lock_key(app_id: str) -> str:
    return f"wechat:token-lock:{app_id}"


class TokenKeeper:
    """Gets and refreshes access tokens for the mini-program and the official account."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.owner = uuid.uuid4().hex
        self._secrets = {
            settings.mp_appid: settings.mp_secret,
            settings.oa_appid: settings.oa_secret,
        }
        self._local: dict[str, tuple[str, float]] = {}

    async def get(self, app_id: str) -> str:
        """The current shared token, fetched when there is none."""
        cached = self._local.get(app_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            current = await get_kv().get(token_key(app_id))
        except KeyValueUnavailable:
            if cached is None:
                raise
            # The store is down, the token we had most likely still works (WeChat's live for
            # two hours); a 40001 sends the caller to `refresh`, which waits for the store.
            return cached[0]
        if not current:
            return await self.refresh(app_id, stale=None)
        return self._remember(app_id, current)

    def _remember(self, app_id: str, token: str) -> str:
        self._local[app_id] = (token, time.monotonic() + LOCAL_SECONDS)
        return token

    async def refresh(self, app_id: str, *, stale: str | None) -> str:
        """A token other than `stale`: someone else's fresh one, or one fetched under the lock."""
        kv = get_kv()
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            current = await kv.get(token_key(app_id))
            if current and current != stale:
                return self._remember(app_id, current)
            if await kv.set(lock_key(app_id), self.owner, ttl=LOCK_TTL_SECONDS, nx=True):
                try:
                    # Whoever held the lock before may have stored a fresh token just now.
                    current = await kv.get(token_key(app_id))
                    if current and current != stale:
                        return self._remember(app_id, current)
                    token, expires_in = await self._fetch(app_id, force=False)
                    if stale is not None and token == stale:
                        # WeChat refused this token yet still hands it out: only a forced
                        # refresh ends it (limited to 20 a day, so only here, under the lock).
                        log.warning("access token for %s refused but current; forcing", app_id)
                        token, expires_in = await self._fetch(app_id, force=True)
                    ttl = max(60, expires_in - EXPIRY_MARGIN_SECONDS)
                    await kv.set(token_key(app_id), token, ttl=ttl)
                    log.info("access token refreshed for %s", app_id)
                    return self._remember(app_id, token)
                finally:
                    await kv.release_if(lock_key(app_id), self.owner)
            if time.monotonic() > deadline:
                raise TokenUnavailable(f"timed out waiting for the {app_id} token refresh")
            await asyncio.sleep(POLL_SECONDS)

    async def _fetch(self, app_id: str, *, force: bool) -> tuple[str, int]:
        secret = self._secrets.get(app_id)
        if secret is None:
            raise TokenUnavailable(f"no secret configured for app {app_id}")
        # The stable interface: another system fetching a token for the same account (with
        # `cgi-bin/token`, or this one unforced) does not end ours, and WeChat renews it by
        # itself in its last five minutes.
        url = self.settings.wechat_api_base.rstrip("/") + STABLE_TOKEN_PATH
        body = {
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret,
            "force_refresh": force,
        }
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as http:
                response = await http.post(url, json=body)
            response.raise_for_status()
            result = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TokenUnavailable(f"token fetch failed: {type(exc).__name__}") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            errcode = result.get("errcode") if isinstance(result, dict) else None
            raise TokenUnavailable(f"token fetch refused: {errcode}", errcode=errcode)
        expires_in = result.get("expires_in")
        return token, expires_in if isinstance(expires_in, int) else 7200
