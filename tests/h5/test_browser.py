"""The H5 pages in a real browser: Debian's Chromium at phone size, driven by playwright.

Runs on SQLite only (the pages are the same on every database). Screenshots go to
tests/artifacts/ for a human to look at. Skips without /usr/bin/chromium, fails in CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.config import Settings
from tests.conftest import IN_CI, ROOT, free_port, linli_env, wait_for_http
from tests.h5.conftest import Demo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} not found: apt-get install chromium to run browser tests"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: browser tests may not be skipped)")
    pytest.skip(message)


@pytest.fixture
def server(db: None, demo: Demo, settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`linli serve` (one worker) on this test's database, which `db` and `demo` filled."""
    port = free_port()
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=linli_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/readyz", process=process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_persona_login_and_home_on_a_phone(chromium: Path, server: str, demo: Demo) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
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
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
        page.on(
            "request",
            lambda r: r.url.startswith(server) or problems.append(f"outside: {r.url}"),
        )

        await page.goto(server + "/h5/")
        assert page.url.startswith(server + "/h5/login?next=")
        await page.get_by_role("button", name="王阿姨").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "h5-login.png"), full_page=True)

        await page.get_by_role("button", name="王阿姨").click()
        await page.wait_for_url(server + "/h5/")
        assert await page.get_by_text("你好，王阿姨").is_visible()
        assert await page.get_by_text("大田社区").first.is_visible()
        for label in ("在职党员报到", "微心愿", "活动报名", "积分兑换", "通知公告"):
            assert await page.get_by_role("link", name=label).is_visible(), label
        # WeUI applied: the grid lays three entries per row.
        grid = await page.locator(".weui-grid").first.bounding_box()
        assert grid is not None and 120 <= grid["width"] <= 130
        await page.screenshot(path=str(ARTIFACTS / "h5-home.png"), full_page=True)

        await page.get_by_role("link", name="我的").first.click()
        await page.wait_for_url(server + "/h5/me")
        await page.select_option("#community_id", label="新闸社区")
        await page.select_option("#building_id", label="中凯大厦")
        await page.get_by_role("button", name="保存").click()
        await page.wait_for_url(server + "/h5/me?saved=1")
        assert await page.get_by_text("已保存").is_visible()
        await page.screenshot(path=str(ARTIFACTS / "h5-profile.png"), full_page=True)

        await page.get_by_role("link", name="返回首页").click()
        await page.wait_for_url(server + "/h5/")
        assert await page.get_by_text("新闸社区").first.is_visible()

        await browser.close()
    assert problems == []
