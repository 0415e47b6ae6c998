"""What people type into H5 forms, read one way on every page.

A form becomes the same pydantic `*In` model the API takes (`build`), so a rule or a field
limit is written once, in the model, and a page reads it from there (`max_length`).
A browser's date box sends `2026-03-01`, a datetime-local box `2026-03-01T09:30` (local
time, no offset). Both are bounded to 2000–2099 like request bodies, before any page or
service does arithmetic with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from annotated_types import MaxLen
from pydantic import BaseModel, ValidationError

from backend.core.clock import local_zone
from backend.core.errors import Invalid
from backend.core.text import check_date, check_moment

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

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
        moment = moment.replace(tzinfo=local_zone())
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


def label_of(model: type[BaseModel], field: str) -> str:
    """The field's Chinese name: its `title` in the model, else the key itself."""
    info = model.model_fields.get(field)
    return (info.title if info and info.title else None) or field


def max_length(model: type[BaseModel], field: str) -> int | None:
    """The model's length limit of `field`, for the form box's maxlength."""
    info = model.model_fields.get(field)
    if info is None:
        return None
    limits = [m.max_length for m in info.metadata if isinstance(m, MaxLen)]
    return limits[0] if limits else None


def _message(model: type[BaseModel], error: Any) -> tuple[str, str]:
    field = str(error["loc"][0]) if error["loc"] else "body"
    label = label_of(model, field)
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind in ("text_control", "moment_window", "date_window"):
        return field, f"{label}{error['msg']}"
    if kind == "missing" or (kind == "string_too_short" and context.get("min_length") == 1):
        return field, f"请填写{label}"
    if kind == "string_too_long":
        return field, f"{label}不能超过 {context.get('max_length')} 个字"
    if kind == "string_too_short":
        return field, f"{label}至少 {context.get('min_length')} 个字"
    return field, f"{label}填写不正确"


def build(model: type[M], values: Mapping[str, Any], errors: dict[str, str] | None = None) -> M:
    """`model` from a form's values; Invalid naming every wrong field in Chinese otherwise
    (together with the complaints already in `errors`, e.g. from `collect`)."""
    fields = dict(errors or {})
    try:
        built = model.model_validate(dict(values))
    except ValidationError as exc:
        for error in exc.errors():
            field, message = _message(model, error)
            fields.setdefault(field, message)
        raise Invalid(fields=fields) from exc
    if fields:
        raise Invalid(fields=fields)
    return built
