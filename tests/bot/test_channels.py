"""Sending limits shared by every bot process: WeChat sends per app and second."""

from __future__ import annotations

import time

import pytest

from bot.channels import pace

pytestmark = pytest.mark.usefixtures("db")


async def test_sends_beyond_the_per_second_limit_wait_for_the_next_second():
    seconds = []
    for _ in range(5):
        await pace("wx_app", 2)
        seconds.append(int(time.time()))
    # At most two sends share a second; the others waited for a later one.
    assert max(seconds.count(s) for s in set(seconds)) <= 2
    assert len(set(seconds)) >= 3
