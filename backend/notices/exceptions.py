"""The refusals of the notices domain, each with a stable code and a Chinese message."""

from __future__ import annotations

from backend.core.errors import Conflict


class NoticeNotCancellable(Conflict):
    code = "notice_not_cancellable"
    message = "通知已发布或已取消，不能再取消"
