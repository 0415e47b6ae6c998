"""The phone the H5 browser tests hold: Debian's Chromium at 375×812 under playwright.

Every page opened through `Phones` is watched for what a page in WeChat must never do:
console errors (CSP violations among them), failed loads, 4xx/5xx answers and requests
that leave the server (the pages must work offline). The `phones` fixture in conftest.py
hands one out; screenshots go to tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI, ROOT
from tests.factories import session_cookies

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

    from backend.accounts.models import User

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
PHONE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": PHONE_UA,
    "locale": "zh-CN",
}


def chromium_or_skip() -> Path:
    """Debian's Chromium; without it skip on a fresh machine, fail under CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} not found: apt-get install chromium to run browser tests"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: browser tests may not be skipped)")
    pytest.skip(message)


@dataclass
class Phones:
    """Phones on `server`, each its own browser context (its own cookies), all reporting into
    one `problems` list that a test expects to stay empty."""

    browser: Browser
    server: str
    problems: list[str] = field(default_factory=list)

    async def open(self, *, user: User | None = None) -> Page:
        """A new phone, already signed in as `user` (by session cookie) when one is given."""
        context = await self.browser.new_context(**PHONE)
        if user is not None:
            await context.add_cookies(
                [
                    {"name": name, "value": value, "url": self.server}
                    for name, value in session_cookies(user).items()
                ]
            )
        page = await context.new_page()
        self._watch(page)
        return page

    async def login(self, name: str, next_path: str) -> Page:
        """A new phone signed in by tapping the demo persona `name` on the login page."""
        page = await self.open()
        await page.goto(f"{self.server}/h5/login?next={next_path}")
        await page.get_by_role("button", name=name).click()
        await page.wait_for_url(self.server + next_path)
        return page

    def _watch(self, page: Page) -> None:
        problems = self.problems
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
        page.on(
            "request",
            lambda r: r.url.startswith(self.server) or problems.append(f"outside: {r.url}"),
        )


async def screenshot(page: Page, name: str) -> None:
    """The whole page as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
