"""Cursor pagination for `?limit=&cursor=` lists: keyset on the primary key, opaque cursors.

A cursor names the last row a client has seen (and the direction of the list), so pages
stay stable while rows are added, and a cursor from another list order is refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict
from tortoise.models import Model
from tortoise.queryset import QuerySet

from backend.core.errors import Invalid
from backend.core.ids import MAX_ID

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 64
_LIMIT_HELP = f"每页条数，默认 {DEFAULT_LIMIT}，最多 {MAX_LIMIT}"

M = TypeVar("M", bound=Model)
T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """What a client asked for: how many rows, after which cursor."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass
class Page(Generic[M]):
    """One page of models and the cursor of the next page (None on the last one)."""

    items: list[M]
    next_cursor: str | None


class PageOut(BaseModel, Generic[T]):
    """The list envelope of API.md: `{"items": [...], "next_cursor": "..."|null}`."""

    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    next_cursor: str | None = None


class OutModel(BaseModel):
    """A response body made from what a service returned (an ORM object or a view): `of()`
    maps one, `page()` a page of them into the list envelope."""

    @classmethod
    def of(cls, view: Any) -> Self:
        return cls.model_validate(view, from_attributes=True)

    @classmethod
    def page(cls, page: Page[Any]) -> PageOut[Self]:
        return PageOut[cls](items=[cls.of(v) for v in page.items], next_cursor=page.next_cursor)


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=_LIMIT_HELP)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="上一页返回的 next_cursor")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor or None)


PageParams = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(last_id: int, *, descending: bool) -> str:
    raw = f"{'d' if descending else 'a'}{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, descending: bool, max_id: int = MAX_ID) -> int:
    """The last id a cursor names; Invalid when it is not one this list order issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    direction, digits = raw[:1], raw[1:]
    # Bounded by the id column, so a forged cursor cannot overflow the database integer.
    if (
        direction != ("d" if descending else "a")
        or not digits.isdigit()
        or len(digits) > 19
        or int(digits) > max_id
    ):
        raise Invalid("分页参数不正确，请从第一页重新加载", fields={"cursor": "无效的分页游标"})
    return int(digits)


async def paginate(
    queryset: QuerySet[M], page: PageRequest, *, descending: bool = False
) -> Page[M]:
    """Fetch one page of `queryset` ordered by id (newest first when `descending`)."""
    limit = max(1, min(page.limit, MAX_LIMIT))
    if page.cursor is not None:
        max_id = queryset.model._meta.pk.constraints.get("le", MAX_ID)
        after = decode_cursor(page.cursor, descending=descending, max_id=max_id)
        queryset = queryset.filter(id__lt=after) if descending else queryset.filter(id__gt=after)
    rows = await queryset.order_by("-id" if descending else "id").limit(limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].pk, descending=descending) if has_more else None
    return Page(items=rows, next_cursor=next_cursor)
