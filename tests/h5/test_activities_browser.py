"""活动报名 in a real browser at phone size: the last seat, then the waitlist, then full.

Debian's Chromium driven by playwright against `linli serve` on SQLite (the server and
browser fixtures of test_browser.py). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.accounts.models import User
from backend.activities import service as activities_service
from tests.activities.helpers import make_activity
from tests.factories import make_user, session_cookies
from tests.h5 import test_browser
from tests.h5.conftest import Demo
from tests.h5.test_browser import ARTIFACTS, CHROMIUM_ARGS, PHONE_UA

# The same Chromium and `linli serve` fixtures as the shell's browser test.
chromium = test_browser.chromium
server = test_browser.server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_last_seat_then_waitlist_then_full_on_a_phone(
    chromium: Path, server: str, demo: Demo
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    activity = await make_activity(demo.community, capacity=2, waitlist_capacity=1)
    early = await make_user(community=demo.community, nickname="早鸟")
    await activities_service.book_activity(user_id=early.id, activity_id=activity.id)
    neighbour = await make_user(community=demo.community, nickname="李阿姨")
    latecomer = await make_user(community=demo.community, nickname="赵叔叔")
    detail = f"{server}/h5/activities/{activity.id}"
    problems: list[str] = []

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )

        async def phone_as(user: User):
            context = await browser.new_context(
                viewport={"width": 375, "height": 812},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                user_agent=PHONE_UA,
                locale="zh-CN",
            )
            await context.add_cookies(
                [{"name": k, "value": v, "url": server} for k, v in session_cookies(user).items()]
            )
            page = await context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            return page

        # 王阿姨 takes the last seat.
        page = await phone_as(demo.resident)
        await page.goto(f"{server}/h5/activities")
        card = page.get_by_role("link", name="舞韵瑜伽")
        assert "剩余 1/2" in await card.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "h5-activities-list.png"), full_page=True)
        await card.click()
        await page.wait_for_url(detail)
        await page.get_by_role("button", name="立即报名").click()
        await page.wait_for_url(f"{detail}?done=confirmed")
        assert await page.locator("#my-status").inner_text() == "已报名"
        assert "已满" in await page.locator("#places").inner_text()
        await page.screenshot(path=str(ARTIFACTS / "h5-activity-booked.png"), full_page=True)

        # The next person finds the seats gone and joins the waitlist.
        page = await phone_as(neighbour)
        await page.goto(detail)
        join = page.get_by_role("button", name="加入候补")
        assert await join.is_visible()
        await join.click()
        await page.wait_for_url(f"{detail}?done=waitlisted")
        assert await page.locator("#my-status").inner_text() == "候补第 1 位"
        await page.screenshot(path=str(ARTIFACTS / "h5-activity-waitlisted.png"), full_page=True)

        # And the one after that finds it full.
        page = await phone_as(latecomer)
        await page.goto(detail)
        full = page.get_by_role("button", name="已满")
        assert await full.is_visible() and await full.is_disabled()
        await page.screenshot(path=str(ARTIFACTS / "h5-activity-full.png"), full_page=True)

        # Staff show the rotating check-in code.
        staff = await User.get(id=activity.created_by_id)
        page = await phone_as(staff)
        await page.goto(f"{detail}/qr")
        assert await page.locator("svg").first.is_visible()
        assert len(await page.locator("#code").inner_text()) == 6
        await page.screenshot(path=str(ARTIFACTS / "h5-activity-qr.png"), full_page=True)
        await browser.close()
    assert problems == []
