"""Fixed-window rate limits per user and per client IP (Redis-backed when configured)."""

from __future__ import annotations

import time

from backend.core.config import get_settings
from backend.core.errors import RateLimited
from backend.core.redis import get_kv

WINDOW_SECONDS = 60


async def hit(bucket: str, *, limit: int, window: int = WINDOW_SECONDS) -> None:
    """Count one request in `bucket`; raise RateLimited past `limit` per window."""
    if not get_settings().rate_limits_enabled:
        return
    slot = int(time.time() // window)
    try:
        count = await get_kv().incr(f"rl:{bucket}:{slot}", ttl=window + 1)
    except Exception:
        return  # Redis is an accelerator: when it is down, serve rather than refuse.
    if count > limit:
        retry = window - int(time.time()) % window
        raise RateLimited(headers={"Retry-After": str(retry)})


async def limit_user(user_id: int) -> None:
    await hit(f"user:{user_id}", limit=get_settings().rate_limit_user_per_minute)


async def limit_ip(ip: str) -> None:
    await hit(f"ip:{ip}", limit=get_settings().rate_limit_ip_per_minute)
