"""A notice in a real phone-sized browser: staff write it, check the preview of the WeChat
message and the group-robot text, publish it, and a resident reads it. Screenshots of
each step go to tests/artifacts/notices-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from tests.h5.conftest import Demo
from tests.h5.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CHROMIUM_ARGS,
    PHONE_UA,
    chromium,
    server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "关于本小区二次供水设施清洗期间临时停水的通知"


@pytest.fixture
async def staffed(demo: Demo) -> Demo:
    staff = await User.create(nickname="陈社工", persona="staff", community=demo.community)
    await accounts_service.grant_role(
        actor=None, user_id=staff.id, role="staff", community_id=demo.community.id
    )
    demo.community.wecom_robot_key = "demo-robot"
    await demo.community.save()
    return demo


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_staff_publish_and_a_resident_reads_on_phones(
    chromium: Path,  # noqa: F811
    server: str,  # noqa: F811
    staffed: Demo,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )

        async def phone_as(name: str, next_path: str):
            context = await browser.new_context(
                viewport={"width": 375, "height": 812},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                user_agent=PHONE_UA,
                locale="zh-CN",
            )
            page = await context.new_page()
            # CSP violations and failed loads show up here: the pages must work offline.
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.on(
                "response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}")
            )
            page.on(
                "request",
                lambda r: r.url.startswith(server) or problems.append(f"outside: {r.url}"),
            )
            await page.goto(server + f"/h5/login?next={next_path}")
            await page.get_by_role("button", name=name).click()
            await page.wait_for_url(server + next_path)
            return page

        async def shot(page, name: str) -> None:
            await page.screenshot(path=str(ARTIFACTS / f"notices-{name}.png"), full_page=True)

        staff = await phone_as("陈社工", "/h5/notices/new")
        await staff.get_by_label("标题").fill(TITLE)
        await staff.get_by_label("正文").fill(
            "本周六 9:00–15:00 清洗二次供水设施，届时停水，请提前储水。\n"
            "恢复供水后如水质浑浊，请放水片刻再使用。"
        )
        await shot(staff, "1-compose")
        await staff.get_by_role("button", name="预览").click()
        await staff.wait_for_url(server + "/h5/notices/preview")
        assert await staff.get_by_text(TITLE[:19] + "…").is_visible()
        assert await staff.locator("#recipients").inner_text() == "2 人"
        assert await staff.get_by_text("【社区通知】" + TITLE).is_visible()
        await shot(staff, "2-preview")

        await staff.get_by_role("button", name="确认发布").click()
        await staff.wait_for_url("**/h5/notices/*?done=published")
        assert await staff.get_by_text("通知已发布").is_visible()
        assert await staff.locator("#delivery").is_visible()
        await shot(staff, "3-published")

        resident = await phone_as("王阿姨", "/h5/notices")
        await resident.get_by_text(TITLE).click()
        await resident.wait_for_url("**/h5/notices/*")
        assert await resident.get_by_text("恢复供水后如水质浑浊").is_visible()
        assert not await resident.locator("#delivery").count()
        await shot(resident, "4-resident-reads")
        await browser.close()
    assert problems == []
