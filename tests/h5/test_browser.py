"""The H5 pages in a real browser: Debian's Chromium at phone size, driven by playwright.

Runs on SQLite only (the pages are the same on every database). Screenshots go to
tests/artifacts/ for a human to look at. Skips without /usr/bin/chromium, fails in CI.
"""

from __future__ import annotations

import pytest

from tests.h5.browser import Phones, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_persona_login_and_home_on_a_phone(phones: Phones) -> None:
    server = phones.server
    page = await phones.open()

    await page.goto(server + "/h5/")
    assert page.url.startswith(server + "/h5/login?next=")
    await page.get_by_role("button", name="王阿姨").wait_for()
    await screenshot(page, "h5-login")

    await page.get_by_role("button", name="王阿姨").click()
    await page.wait_for_url(server + "/h5/")
    assert await page.get_by_text("你好，王阿姨").is_visible()
    assert await page.get_by_text("大田社区").first.is_visible()
    for label in ("在职党员报到", "微心愿", "活动报名", "积分兑换", "通知公告"):
        assert await page.get_by_role("link", name=label).is_visible(), label
    # WeUI applied: the grid lays three entries per row.
    grid = await page.locator(".weui-grid").first.bounding_box()
    assert grid is not None and 120 <= grid["width"] <= 130
    await screenshot(page, "h5-home")

    await page.get_by_role("link", name="我的").first.click()
    await page.wait_for_url(server + "/h5/me")
    await page.select_option("#community_id", label="新闸社区")
    await page.select_option("#building_id", label="中凯大厦")
    await page.get_by_role("button", name="保存").click()
    await page.wait_for_url(server + "/h5/me?saved=1")
    assert await page.get_by_text("已保存").is_visible()
    await screenshot(page, "h5-profile")

    await page.get_by_role("link", name="返回首页").click()
    await page.wait_for_url(server + "/h5/")
    assert await page.get_by_text("新闸社区").first.is_visible()

    assert phones.problems == []
