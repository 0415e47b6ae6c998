"""Dates and times typed into H5 forms and query strings, read one way on every page.

A browser's date box sends `2026-03-01`, a datetime-local box `2026-03-01T09:30` (local
time, no offset). Both are bounded to 2000–2099 like request bodies, before any page or
service does arithmetic with them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from backend.core.config import get_settings
from backend.core.errors import Invalid
from backend.core.text import check_date, check_moment

T = TypeVar("T")

# Longer than any ISO date or time a form box sends: refused before parsing.
_MAX_INPUT = 40


def parse_date(value: str | None, *, field: str, required: bool = False) -> date | None:
    """A `yyyy-mm-dd` value (empty means None); Invalid naming `field` when malformed or
    outside 2000–2099."""
    text = (value or "").strip()
    if not text:
        if required:
            raise Invalid(fields={field: "请选择日期"})
        return None
    try:
        if len(text) > _MAX_INPUT:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(fields={field: "日期格式不正确"}) from exc
    return check_date(day, field=field)


def parse_local_datetime(
    value: str | None, *, field: str, required: bool = False
) -> datetime | None:
    """A datetime-local value read as the street's local time (an explicit offset is
    kept; empty means None); Invalid naming `field` when malformed or outside 2000–2099."""
    text = (value or "").strip()
    if not text:
        if required:
            raise Invalid(fields={field: "请填写时间"})
        return None
    try:
        if len(text) > _MAX_INPUT:
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(fields={field: "时间格式不正确"}) from exc
    check_moment(moment, field=field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return moment


def collect(
    errors: dict[str, str], parse: Callable[..., T | None], value: str | None, *, field: str
) -> T | None:
    """`parse(value, field=field)`, recording its complaint in `errors` (then None), so a
    form can mark every wrong field at once."""
    try:
        return parse(value, field=field)
    except Invalid as exc:
        errors.update(exc.fields or {})
        return None
