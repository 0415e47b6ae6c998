"""Sending limits shared by every bot process: WeChat sends per app and second."""

from __future__ import annotations

import time

import pytest

from bot.channels import Channels, pace

pytestmark = pytest.mark.usefixtures("db")


async def test_sends_beyond_the_per_second_limit_wait_for_the_next_second():
    seconds = []
    for _ in range(5):
        await pace("wx_app", 2)
        seconds.append(int(time.time()))
    # At most two sends share a second; the others waited for a later one.
    assert max(seconds.count(s) for s in set(seconds)) <= 2
    assert len(set(seconds)) >= 3


@pytest.mark.parametrize(
    ("no_proxy", "expected"), [("", "http://127.0.0.1:9"), ("127.0.0.1", None)]
)
async def test_wechat_clients_take_the_proxy_from_the_environment(
    settings, monkeypatch, no_proxy, expected
):
    # Read once when the client is made (not on every send), NO_PROXY included.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    channels = Channels(settings)
    try:
        session = channels._client("wx_app", "secret", "token")._http
        assert session.trust_env is False
        assert session.proxies.get("http") == expected
    finally:
        await channels.aclose()
