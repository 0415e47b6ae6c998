"""在职党员报到 in a real browser at phone size (375×812): a resident reports in, staff
approve, the member claims a post and checks in with the code on the staff's QR screen.
Screenshots go to tests/artifacts/party-*.png for a human to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.party import service
from tests.factories import make_user
from tests.h5.conftest import Demo
from tests.h5.test_browser import ARTIFACTS, CHROMIUM_ARGS, PHONE_UA, chromium, server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["chromium", "server"]


async def _phone(browser, server_url: str, problems: list[str]):
    context = await browser.new_context(
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=PHONE_UA,
        locale="zh-CN",
    )
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"),
    )
    page.on(
        "request",
        lambda r: r.url.startswith(server_url) or problems.append(f"outside: {r.url}"),
    )
    return page


async def _login(page, server_url: str, name: str, next_path: str) -> None:
    await page.goto(server_url + next_path)
    await page.get_by_role("button", name=name).click()
    await page.wait_for_url(server_url + next_path)


async def _shot(page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"party-{name}.png"), full_page=True)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_report_in_approve_claim_and_check_in_on_a_phone(
    chromium: Path, server: str, demo: Demo
) -> None:
    from playwright.async_api import async_playwright

    staff = await make_user(
        persona="party-staff", nickname="陈社工", community=demo.community, roles=["staff"]
    )
    post = await service.create_post(
        actor=staff,
        form=service.PostForm(
            community_id=demo.community.id,
            title="绿化养护岗",
            term=service.current_term(),
            capacity=3,
            description="每周六上午养护小区绿地，劝导文明养犬",
            location="大田社区中心花园",
            skills=["环境绿化", "文明劝导"],
        ),
    )
    await service.create_post(
        actor=staff,
        form=service.PostForm(
            community_id=demo.community.id,
            title="法律咨询岗",
            term=service.current_term(),
            capacity=2,
            skills=["法律咨询"],
        ),
    )

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        member = await _phone(browser, server, problems)
        desk = await _phone(browser, server, problems)

        # The resident reports in.
        await _login(member, server, "王阿姨", "/h5/party")
        await member.get_by_role("link", name="我要报到").click()
        await member.wait_for_url(server + "/h5/party/register")
        await member.fill("#name", "王秀英")
        await member.fill("#phone", "139 1234 5678")
        await member.fill("#work_unit", "静安区税务局")
        await member.fill("#party_org", "静安区税务局机关党委")
        await member.get_by_text("环境绿化", exact=True).click()
        await member.get_by_text("周六", exact=True).click()
        await _shot(member, "register")
        await member.get_by_role("button", name="提交报到").click()
        await member.wait_for_url(server + "/h5/party?done=registered")
        assert await member.locator("#registration-status").inner_text() == "待审核"
        await _shot(member, "pending")

        # Staff approve.
        await _login(desk, server, "陈社工", "/h5/party/staff/queue")
        assert await desk.get_by_text("139****5678").is_visible()
        await _shot(desk, "queue")
        await desk.get_by_role("button", name="通过「王秀英」").click()
        await desk.wait_for_url("**/h5/party/staff/queue?**done=approved")
        assert await desk.get_by_text("已通过报到").is_visible()

        # The member sees the post suggested for their skills and claims it.
        await member.goto(server + "/h5/party/posts")
        assert await member.get_by_text("为您推荐").is_visible()
        await _shot(member, "posts")
        await member.get_by_role("button", name="认领「绿化养护岗」").first.click()
        await member.wait_for_url(server + "/h5/party/posts?done=claimed")
        assert await member.get_by_text("岗位认领成功").is_visible()

        # Staff show the rotating QR code; the member checks in with it.
        await desk.goto(server + f"/h5/party/staff/posts/{post.id}/qr")
        code = (await desk.locator("#code").inner_text()).strip()
        assert len(code) == 6 and code.isdigit()
        assert await desk.locator("svg.segno").is_visible()
        await _shot(desk, "qr")
        await member.goto(server + f"/h5/party/checkin?post={post.id}&code={code}")
        assert await member.locator("#code").input_value() == code
        await member.get_by_role("button", name="签到").click()
        await member.wait_for_url(f"**/h5/party/checkin?post={post.id}&done=checked_in")
        assert await member.get_by_text("签到成功").is_visible()
        assert await member.get_by_role("button", name="签退").is_visible()
        await _shot(member, "checked-in")

        await member.goto(server + "/h5/party")
        assert await member.locator("#registration-status").inner_text() == "已报到"
        assert await member.get_by_text("绿化养护岗").is_visible()
        await _shot(member, "home")

        await desk.goto(server + f"/h5/party/staff/posts/{post.id}")
        assert await desk.get_by_text("王秀英").first.is_visible()
        await _shot(desk, "staff-post")
        await desk.goto(server + "/h5/party/staff/report")
        assert await desk.get_by_text("静安区税务局").first.is_visible()
        await _shot(desk, "report")
        await browser.close()
    assert problems == []
