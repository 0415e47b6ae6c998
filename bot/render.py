"""Render an outbox row's context into what each channel sends.

One Jinja2 file per template key in bot/templates/. Its blocks are:
- WeChat fields named like the template's keys (`thing1`, `time2`, `phrase3` …): the same
  data dict serves the mini-program subscribe message and the official-account template
  message, so configure both WeChat templates with the same keys;
- `page` (mini-program page), `url` (H5 path for the template message), `wecom` (markdown
  for the WeCom group robot).
WeChat rejects a value over its type's limit, so every field is cut to fit here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Invalid

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Maximum length per WeChat field type (subscribe-message rules; template messages match).
FIELD_LIMITS = {
    "thing": 20,
    "name": 10,
    "phrase": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phone_number": 17,
    "car_number": 8,
    "amount": 16,
    "time": 40,
    "date": 40,
}
# Free text may end in "…"; the other types allow only their own characters.
ELLIPSIS_TYPES = {"thing", "name"}
_FIELD_NAME = re.compile(r"^(" + "|".join(FIELD_LIMITS) + r")(\d+)$")
WECOM_MARKDOWN_MAX_BYTES = 4096

BOOKING_STATUS = {
    "confirmed": "报名成功",
    "promoted": "候补转正",
    "waitlisted": "候补中",
    "cancelled": "已取消",
}
WISH_STATUS = {
    "claimed": "已被认领",
    "accepted": "已接受认领",
    "released": "已释放",
    "fulfilled": "已完成",
    "closed": "已确认",
    "approved": "审核通过",
    "rejected": "未通过",
}


class RenderError(Exception):
    """The template is missing or the context does not fit it: retrying will not help."""


@dataclass(frozen=True)
class Rendered:
    fields: dict[str, str]
    page: str | None
    url: str | None
    markdown: str

    def wechat_data(self) -> dict[str, dict[str, str]]:
        return {key: {"value": value} for key, value in self.fields.items()}


def fit_field(name: str, value: str) -> str:
    """Make `value` acceptable for WeChat field `name` (one line, within the type's limit)."""
    value = " ".join(value.split())
    match = _FIELD_NAME.match(name)
    if match is None:
        return value
    kind = match.group(1)
    limit = FIELD_LIMITS[kind]
    if len(value) <= limit:
        return value
    if kind in ELLIPSIS_TYPES:
        return value[: limit - 1] + "…"
    return value[:limit]


def fit_markdown(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= WECOM_MARKDOWN_MAX_BYTES:
        return text
    cut = encoded[: WECOM_MARKDOWN_MAX_BYTES - len("…".encode())]
    return cut.decode("utf-8", "ignore") + "…"


@lru_cache
def _environment(timezone: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = ZoneInfo(timezone)

    def wx_time(value: Any) -> str:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            raise RenderError(f"not a time: {value!r}")
        if moment.tzinfo is not None:
            moment = moment.astimezone(zone)
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"

    env.filters["wx_time"] = wx_time
    env.filters["booking_status"] = lambda status: BOOKING_STATUS.get(status, "状态更新")
    env.filters["wish_status"] = lambda status: WISH_STATUS.get(status, "状态更新")
    return env


def render(template_key: str, context: dict[str, Any], *, now: datetime, timezone: str) -> Rendered:
    """Render `template_key` with `context`; raise RenderError when that cannot work."""
    if not re.fullmatch(r"[a-z_]+", template_key):
        raise RenderError(f"bad template key {template_key!r}")
    env = _environment(timezone)
    try:
        template = env.get_template(f"{template_key}.j2")
        values = template.new_context({**context, "now": now})
        blocks = {name: "".join(block(values)).strip() for name, block in template.blocks.items()}
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"no template {template_key!r}") from exc
    except (jinja2.TemplateError, ValueError, TypeError) as exc:
        raise RenderError(f"{template_key}: {exc}") from exc
    fields = {
        name: fit_field(name, value) for name, value in blocks.items() if _FIELD_NAME.match(name)
    }
    empty = [name for name, value in fields.items() if not value]
    if empty:
        raise RenderError(f"{template_key}: empty field(s) {', '.join(empty)}")
    return Rendered(
        fields=fields,
        page=blocks.get("page") or None,
        url=blocks.get("url") or None,
        markdown=fit_markdown(blocks.get("wecom", "")),
    )


def preview(template_key: str, context: dict[str, Any]) -> dict[str, Any]:
    """What `render` makes of a draft, for staff to check before publishing (the notice
    preview: backend.main installs this as backend.notices.deps.message_renderer)."""
    try:
        rendered = render(template_key, context, now=clock.now(), timezone=get_settings().timezone)
    except RenderError as exc:
        raise Invalid("消息内容无法生成，请检查标题和正文") from exc
    return {
        "fields": rendered.fields,
        "page": rendered.page,
        "url": rendered.url,
        "markdown": rendered.markdown,
    }
