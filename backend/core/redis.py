"""A small key-value interface: Redis when configured, in-process otherwise.

Redis is an accelerator and coordinator, never the source of truth; every caller
must stay correct when it answers slowly or not at all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from redis import asyncio as redis_asyncio

from backend.core.config import Settings


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


class RedisKeyValue:
    def __init__(self, url: str, prefix: str = "") -> None:
        self.prefix = prefix
        self.client = redis_asyncio.from_url(
            url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
        )
        self._release = self.client.register_script(_RELEASE_IF)
        self._incr = self.client.register_script(_INCR_WITH_TTL)

    async def get(self, key: str) -> str | None:
        return await self.client.get(self.prefix + key)

    async def set(self, key: str, value: str, *, ttl: float, nx: bool = False) -> bool:
        return bool(
            await self.client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)), nx=nx)
        )

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def incr(self, key: str, *, ttl: float) -> int:
        return int(await self._incr(keys=[self.prefix + key], args=[max(1, int(ttl * 1000))]))

    async def release_if(self, key: str, value: str) -> bool:
        return bool(await self._release(keys=[self.prefix + key], args=[value]))

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


_kv: KeyValue | None = None


def init_kv(settings: Settings) -> KeyValue:
    global _kv
    _kv = (
        RedisKeyValue(settings.redis_url, settings.redis_prefix)
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
