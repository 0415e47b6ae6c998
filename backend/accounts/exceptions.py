"""The accounts domain's errors: stable codes with the Chinese sentence to show."""

from __future__ import annotations

from backend.core.errors import DomainError


class WeChatUnavailableError(DomainError):
    """WeChat did not answer a login: the person can try again, nothing is wrong with them."""

    status_code = 502
    code = "wechat_unavailable"
    message = "微信服务暂时无法连接，请稍后再试"
