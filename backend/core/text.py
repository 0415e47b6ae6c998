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
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from backend.core.clock import to_local
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
    """Whether `value` holds a character no stored or exported text may hold (a line end
    sent as CR LF or CR counts as the newline it stands for)."""
    pattern = _FORBIDDEN if multiline else _FORBIDDEN_IN_LINE
    if "\r" in value:
        value = normalise_newlines(value)
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


# A mainland mobile number: 11 digits from 13x to 19x.
_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalise_phone(raw: str | None) -> str | None:
    """A mobile number as stored (11 digits), from what people type: spaces and dashes,
    a +86 prefix; None when it is not a mainland mobile number."""
    phone = re.sub(r"[\s-]", "", raw or "").removeprefix("+86")
    return phone if _MOBILE.fullmatch(phone) else None


def moment_in_window(value: datetime) -> bool:
    """Whether `value` (naive means local time) falls in 2000–2099 local time."""
    if value.tzinfo is not None:
        # Far-off instants overflow astimezone(); their year alone already decides.
        if not EARLIEST_YEAR - 1 <= value.year <= LATEST_YEAR + 1:
            return False
        value = to_local(value)
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
        # Browsers and Windows send line ends as CR LF: such a carriage return is no harm.
        value = normalise_newlines(value)
        if has_forbidden(value):
            raise PydanticCustomError("text_control", CONTROL_MESSAGE)
        return value
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


# For query parameters (report periods and the like): the same window as request bodies.
BoundedDate = Annotated[date, AfterValidator(_checked)]

# Only a query string with a percent escape or a byte outside printable ASCII can decode
# to a forbidden character: every other one (the booking rush's) skips the parse.
_MAYBE_UNSAFE_QUERY = re.compile(rb"[%\x00-\x1f\x7f-\xff]")


class QueryTextCheck:
    """Pure ASGI: an API request whose query-string or path parameter holds a forbidden
    character is answered 422 `invalid` naming the parameter (bodies are InModel's)."""

    def __init__(self, app: Any, *, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            field = self._unsafe_field(scope)
            if field is not None:
                # Imported here: responses are only built on this rare path.
                from fastapi.responses import JSONResponse

                error = Invalid(fields={field: CONTROL_MESSAGE})
                await JSONResponse(error.body(), error.status_code)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _unsafe_field(scope: Any) -> str | None:
        query: bytes = scope.get("query_string") or b""
        if query and _MAYBE_UNSAFE_QUERY.search(query):
            # Decoded as Starlette decodes it, so the value checked is the value served.
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if has_forbidden(name):
                    return "query"
                if has_forbidden(value):
                    return name
        if has_forbidden(scope["path"]):
            return _path_parameter(scope) or "path"
        return None


def _path_parameter(scope: Any) -> str | None:
    """The name of the path parameter that holds the forbidden character, found from the
    app's documented paths (only ever on this rare path, and the document is cached)."""
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return None
    path = scope["path"]
    for template in app.openapi().get("paths", {}):
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
        match = re.fullmatch(pattern, path)
        if match is None:
            continue
        for name, value in match.groupdict().items():
            if has_forbidden(value):
                return name
    return None
