"""What the notices services return when a Notice row does not say enough, and how such a
view reads (a notice's status now, a failure reason as staff know it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.core.clock import clock
from backend.notices.audience import Audience
from backend.notices.models import Notice

# What a renderer (bot.render, installed by the app) makes of a template and its context.
Renderer = Callable[[str, dict[str, Any]], dict[str, Any]]

# How a failed row's last_error reads to staff: WeChat's errcode when there is one.
FAILURE_REASONS = {
    "43101": "用户拒收此类消息",
    "40003": "接收人 openid 无效",
    "40037": "消息模板 ID 无效",
    "47003": "模板参数不正确",
    "render": "消息内容无法生成",
    "attempts": "多次重试仍失败",
}


@dataclass(frozen=True)
class NoticeDraft:
    """A checked notice, before it is stored (or instead, for a preview)."""

    audience: Audience
    title: str
    body: str
    link: str
    publish_at: datetime
    publisher: str


@dataclass(frozen=True)
class NoticePreview:
    """The message as WeChat and the group robot would show it, and how many it reaches."""

    fields: dict[str, str]
    page: str | None
    url: str | None
    markdown: str
    recipients: int
    robot: bool
    publish_at: datetime
    publisher: str


@dataclass(frozen=True)
class DeliveryCounts:
    """Where a notice's messages stand: per-recipient rows and the group robots'."""

    recipients: int
    fanout_done: bool
    sent: int
    pending: int
    skipped: int
    failed: int
    failed_by_reason: dict[str, int]
    robot: dict[str, int]


def notice_status(notice: Notice) -> str:
    """published, scheduled or cancelled, as a reader sees it now."""
    if notice.status == "cancelled":
        return "cancelled"
    return "published" if notice.publish_at <= clock.now() else "scheduled"


def describe_reason(reason: str) -> str:
    """A failure reason code as staff read it."""
    if reason in FAILURE_REASONS:
        return FAILURE_REASONS[reason]
    return f"微信返回错误 {reason}" if reason[-1:].isdigit() else "其他错误"
