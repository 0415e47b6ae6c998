"""The one check for text people type, and the one window for times they give.

Every request body model derives from `InModel`, whose catch-all validator runs on every
field: a string with a control character (NUL included: PostgreSQL refuses it in text
columns), a lone surrogate (not encodable as UTF-8) or a Unicode non-character is refused
with 422 `invalid` naming the field, and `\\r\\n` becomes `\\n`; a datetime or date outside
2000–2099 (local time) is refused before any arithmetic can overflow. Form fields of the
H5 pages and query strings pass the same check (`h5.page` and `backend.main`), and a
service that takes keyword arguments cleans them with `clean_text`.

Lengths are counted in characters (code points), as PostgreSQL's varchar counts them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from backend.core.config import get_settings
from backend.core.errors import Invalid

# C0 controls except tab and newline, DEL, C1 controls, the line/paragraph separators,
# surrogates (only ever lone ones in a Python str) and the non-characters U+FFFE/U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# A single-line field refuses tab and newline as well.
_FORBIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")

CONTROL_MESSAGE = "不能包含控制字符或无法识别的字符"
MOMENT_MESSAGE = "时间须在 2000 年至 2099 年之间"
DATE_MESSAGE = "日期须在 2000 年至 2099 年之间"

EARLIEST_YEAR = 2000
LATEST_YEAR = 2099


def normalise_newlines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def has_forbidden(value: str, *, multiline: bool = True) -> bool:
    """Whether `value` holds a character no stored or exported text may hold."""
    pattern = _FORBIDDEN if multiline else _FORBIDDEN_IN_LINE
    return pattern.search(value) is not None


def clean_text(
    value: str | None,
    *,
    field: str,
    label: str,
    min_length: int = 0,
    max_length: int,
    multiline: bool = False,
) -> str:
    """`value` stripped, newlines normalised, checked for forbidden characters and for its
    length in characters; Invalid naming `field` otherwise. None counts as empty."""
    text = normalise_newlines(value or "").strip()
    if has_forbidden(text, multiline=multiline):
        raise Invalid(fields={field: f"{label}{CONTROL_MESSAGE}"})
    if len(text) < min_length:
        message = f"请填写{label}" if min_length == 1 else f"{label}至少 {min_length} 个字"
        raise Invalid(fields={field: message})
    if len(text) > max_length:
        raise Invalid(fields={field: f"{label}不能超过 {max_length} 个字"})
    return text


def moment_in_window(value: datetime) -> bool:
    """Whether `value` (naive means local time) falls in 2000–2099 local time."""
    if value.tzinfo is not None:
        # Far-off instants overflow astimezone(); their year alone already decides.
        if not EARLIEST_YEAR - 1 <= value.year <= LATEST_YEAR + 1:
            return False
        value = value.astimezone(ZoneInfo(get_settings().timezone))
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def date_in_window(value: date) -> bool:
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def check_moment(value: datetime | None, *, field: str) -> datetime | None:
    """`value` unchanged, or Invalid naming `field` when it is outside 2000–2099."""
    if value is not None and not moment_in_window(value):
        raise Invalid(fields={field: MOMENT_MESSAGE})
    return value


def check_date(value: date | None, *, field: str) -> date | None:
    """`value` unchanged, or Invalid naming `field` when it is outside 2000–2099."""
    if value is not None and not date_in_window(value):
        raise Invalid(fields={field: DATE_MESSAGE})
    return value


def _checked(value: Any) -> Any:
    if isinstance(value, str):
        if has_forbidden(value):
            raise PydanticCustomError("text_control", CONTROL_MESSAGE)
        return normalise_newlines(value)
    if isinstance(value, datetime):
        if not moment_in_window(value):
            raise PydanticCustomError("moment_window", MOMENT_MESSAGE)
        return value
    if isinstance(value, date):
        if not date_in_window(value):
            raise PydanticCustomError("date_window", DATE_MESSAGE)
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_checked(item) for item in value)
    if isinstance(value, dict):
        return {_checked(k): _checked(v) for k, v in value.items()}
    return value


class InModel(BaseModel):
    """Base of every request body: text and times checked on every field (see above)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_unsafe_text(cls, value: Any) -> Any:
        # Before parsing, so a raw string is checked whatever type the field declares.
        if isinstance(value, str | list | dict):
            return _checked(value)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _bound_times(cls, value: Any) -> Any:
        if isinstance(value, datetime | date):
            return _checked(value)
        return value
