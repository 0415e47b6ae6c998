"""A small key-value interface: Redis when configured, in-process otherwise.

Redis is an accelerator and coordinator, never the source of truth; every caller
must stay correct when it answers slowly or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from redis import asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from backend.core.config import Settings

log = logging.getLogger("linli.redis")

T = TypeVar("T")


class KeyValueUnavailable(Exception):
    """Redis did not answer in time (or is being left alone for a while after it failed)."""


class KeyValue(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, *, ttl: float, nx: bool = False) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, *, ttl: float) -> int: ...
    async def release_if(self, key: str, value: str) -> bool: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryKeyValue:
    """Single-process stand-in for Redis (the embedded default)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item[0]

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, *, ttl: float, nx: bool = False) -> bool:
        async with self._lock:
            if nx and self._live(key) is not None:
                return False
            self._data[key] = (value, time.monotonic() + ttl)
            if len(self._data) > 50_000:
                self._sweep()
            return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, *, ttl: float) -> int:
        async with self._lock:
            current = self._live(key)
            if current is None:
                self._data[key] = ("1", time.monotonic() + ttl)
                return 1
            value = int(current) + 1
            self._data[key] = (str(value), self._data[key][1])
            return value

    async def release_if(self, key: str, value: str) -> bool:
        async with self._lock:
            if self._live(key) == value:
                del self._data[key]
                return True
            return False

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp <= now]:
            del self._data[key]


_RELEASE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

_INCR_WITH_TTL = """
local v = redis.call('incr', KEYS[1])
if v == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return v
"""


class Breaker:
    """Skips Redis for `pause` seconds after it failed, then lets one call probe it.

    A Redis host that accepts connections and never answers would otherwise cost every
    request the full timeout; with the breaker open, callers go straight to their database
    or in-process path."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self._skip_until = 0.0  # monotonic; 0 while Redis is healthy
        self._probing = False

    def allow(self) -> bool:
        """Whether a call may go to Redis now (after a failure: only the one probe)."""
        if time.monotonic() < self._skip_until:
            return False
        if self._probing:
            return False
        if self._skip_until:
            self._probing = True
        return True

    def succeeded(self) -> None:
        if self._skip_until:
            log.info("Redis answers again")
        self._skip_until = 0.0
        self._probing = False

    def failed(self) -> None:
        if not self._skip_until or self._probing:
            log.warning("Redis unavailable: left alone for %.1f s", self.pause)
        self._skip_until = time.monotonic() + self.pause
        self._probing = False

    def abandoned(self) -> None:
        """A call was cancelled mid-way: it tells nothing about Redis, but frees the probe."""
        self._probing = False

    @property
    def is_open(self) -> bool:
        return bool(self._skip_until)


class RedisKeyValue:
    def __init__(
        self, url: str, prefix: str = "", *, timeout: float = 0.25, pause: float = 5.0
    ) -> None:
        self.prefix = prefix
        # No retries inside redis-py (its default is ten, with backoff): one timeout is the
        # whole cost of a Redis that does not answer, and the breaker spares the next calls.
        self.client = redis_asyncio.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.breaker = Breaker(pause)
        self._release = self.client.register_script(_RELEASE_IF)
        self._incr = self.client.register_script(_INCR_WITH_TTL)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation through the breaker; KeyValueUnavailable when it fails."""
        if not self.breaker.allow():
            raise KeyValueUnavailable("Redis is being skipped after a failure")
        try:
            result = await operation()
        except ResponseError:
            # Redis answered (a refused command): it is up, the caller deals with the error.
            self.breaker.succeeded()
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            self.breaker.failed()
            raise KeyValueUnavailable(type(exc).__name__) from exc
        except BaseException:
            self.breaker.abandoned()
            raise
        self.breaker.succeeded()
        return result

    async def get(self, key: str) -> str | None:
        return await self.call(lambda: self.client.get(self.prefix + key))

    async def set(self, key: str, value: str, *, ttl: float, nx: bool = False) -> bool:
        px = max(1, int(ttl * 1000))
        return bool(
            await self.call(lambda: self.client.set(self.prefix + key, value, px=px, nx=nx))
        )

    async def delete(self, key: str) -> None:
        await self.call(lambda: self.client.delete(self.prefix + key))

    async def incr(self, key: str, *, ttl: float) -> int:
        px = max(1, int(ttl * 1000))
        return int(await self.call(lambda: self._incr(keys=[self.prefix + key], args=[px])))

    async def release_if(self, key: str, value: str) -> bool:
        return bool(await self.call(lambda: self._release(keys=[self.prefix + key], args=[value])))

    async def ping(self) -> None:
        await self.call(self.client.ping)

    async def close(self) -> None:
        await self.client.aclose()


_kv: KeyValue | None = None


def init_kv(settings: Settings) -> KeyValue:
    global _kv
    _kv = (
        RedisKeyValue(
            settings.redis_url,
            settings.redis_prefix,
            timeout=settings.redis_timeout_seconds,
            pause=settings.redis_pause_seconds,
        )
        if settings.redis_url
        else MemoryKeyValue()
    )
    return _kv


def get_kv() -> KeyValue:
    if _kv is None:
        raise RuntimeError("key-value store not initialised; call init_kv() at startup")
    return _kv


async def close_kv() -> None:
    global _kv
    if _kv is not None:
        await _kv.close()
        _kv = None
