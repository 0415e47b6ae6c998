"""`Idempotency-Key` handling: the first response is stored and replayed for retries.

The record lives in the database (unique (scope, key)), so a retry that lands on another
process or after a restart still finds it. A record still "running" after the lease
(`idempotency_lease_seconds`) belongs to a request that died mid-way (its process was
killed; a live one has long been cut off by the statement timeout): the next retry takes it
over with one guarded UPDATE, so of two simultaneous retries only one runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from tortoise.exceptions import IntegrityError

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, Invalid
from backend.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def _fingerprint(endpoint: str, payload: Any) -> str:
    canonical = json.dumps(jsonable_encoder(payload), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


async def _claim(scope: str, key: str, digest: str, now: datetime) -> IdempotencyRecord | None:
    """Insert the running record (started at `now`, which marks this run as its owner);
    return the existing one when the key was seen before and is not free to take over."""
    settings = get_settings()
    expired_before = now - timedelta(seconds=settings.idempotency_ttl_seconds)
    await IdempotencyRecord.filter(scope=scope, key=key, created_at__lt=expired_before).delete()
    try:
        await IdempotencyRecord.create(
            scope=scope, key=key, request_hash=digest, status="running", created_at=now
        )
        return None
    except IntegrityError:
        existing = await IdempotencyRecord.get_or_none(scope=scope, key=key)
        if existing is None:  # finished with an error and removed in between: run again
            return await _claim(scope, key, digest, now)
        lease_ended = now - timedelta(seconds=settings.idempotency_lease_seconds)
        if existing.status == "running" and existing.request_hash == digest:
            taken = await IdempotencyRecord.filter(
                id=existing.id, status="running", created_at__lt=lease_ended
            ).update(created_at=now)
            if taken:
                return None
        return existing


async def idempotent(
    *,
    key: str | None,
    user_id: int,
    endpoint: str,
    payload: Any,
    status_code: int,
    action: Callable[[], Awaitable[Any]],
) -> JSONResponse:
    """Run `action` once per (user, key); replay its response for the same key and body."""
    if key is None:
        return JSONResponse(status_code=status_code, content=jsonable_encoder(await action()))
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid("Idempotency-Key 不合法", fields={"Idempotency-Key": "长度须为 1–255"})
    scope = f"user:{user_id}"
    digest = _fingerprint(endpoint, payload)
    started = clock.now()
    existing = await _claim(scope, key, digest, started)
    if existing is not None:
        if existing.request_hash != digest:
            raise Invalid("同一个 Idempotency-Key 不能用于不同的请求", code="idempotency_mismatch")
        if existing.status != "done":
            raise Conflict("上一次请求仍在处理中，请稍候", code="idempotency_in_progress")
        return JSONResponse(
            status_code=existing.response_status or 200,
            content=json.loads(existing.response_body or "null"),
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        result = jsonable_encoder(await action())
    except BaseException:
        # The service rolled back, so nothing was done: a retry with this key may run again.
        # Only this run's record: one that outlived its lease may belong to a retry by now.
        await IdempotencyRecord.filter(scope=scope, key=key, created_at=started).delete()
        raise
    await IdempotencyRecord.filter(scope=scope, key=key, created_at=started).update(
        status="done",
        response_status=status_code,
        response_body=json.dumps(result, ensure_ascii=False),
    )
    return JSONResponse(status_code=status_code, content=result)


@dataclass(frozen=True)
class Once:
    """A request's Idempotency-Key and the endpoint it was sent to (method and path with
    its ids filled in, taken from the matched route), so no endpoint string is typed twice."""

    key: str | None
    endpoint: str

    def keyed(self, key: str | None) -> Once:
        """The same endpoint with a key that came another way (an H5 form field)."""
        return replace(self, key=key)

    async def run(
        self,
        *,
        user_id: int,
        payload: Any,
        status_code: int,
        action: Callable[[], Awaitable[Any]],
    ) -> JSONResponse:
        return await idempotent(
            key=self.key,
            user_id=user_id,
            endpoint=self.endpoint,
            payload=payload,
            status_code=status_code,
            action=action,
        )


def endpoint_of(request: Request) -> str:
    route = request.scope.get("route")
    path_format = getattr(route, "path_format", None)
    path = path_format.format(**request.path_params) if path_format else request.url.path
    return f"{request.method} {path}"


def _once(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="重试时带同一个值：同一请求只执行一次，重试得到第一次的结果",
        ),
    ] = None,
) -> Once:
    return Once(key=key, endpoint=endpoint_of(request))


# `once: Idempotent` in an endpoint's parameters, then `await once.run(...)`.
Idempotent = Annotated[Once, Depends(_once)]
