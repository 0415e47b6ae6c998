"""H5 test helpers: demo personas made through the models, form-token scraping, and the
`linli serve` + Chromium phones the browser tests drive (see browser.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.config import Settings
from tests.conftest import ROOT, free_port, linli_env, wait_for_http
from tests.factories import Neighbourhood, make_neighbourhood
from tests.h5.browser import CHROMIUM_ARGS, Phones, chromium_or_skip

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def demo(db: None) -> Neighbourhood:
    """The H5 tests' people: the shared scenario (resident and newcomer are its personas)."""
    return await make_neighbourhood()


async def add_persona(demo: Neighbourhood, *, nickname: str, persona: str) -> User:
    """Another demo persona in the demo community, granted the role it is named after
    (staff or party_member)."""
    user = await User.create(nickname=nickname, persona=persona, community=demo.community)
    await accounts_service.grant_role(
        actor=None, user_id=user.id, role=persona, community_id=demo.community.id
    )
    return user


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


async def login_as(client: httpx.AsyncClient, persona: str, next_path: str = "/h5/") -> None:
    page = await client.get("/h5/login")
    response = await client.post(
        "/h5/login/persona",
        data={"csrf_token": csrf_token(page.text), "persona": persona, "next": next_path},
    )
    assert response.status_code == 303, response.text


# --- the browser tests: `linli serve` and Chromium phones on it ---


@pytest.fixture
def chromium() -> Path:
    return chromium_or_skip()


@pytest.fixture
def server(db: None, demo: Neighbourhood, settings: Settings, tmp_path: Path) -> Iterator[str]:
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


@pytest.fixture
async def phones(chromium: Path, server: str) -> AsyncIterator[Phones]:
    """Phones on the test's server, all from one Chromium.

    The browser lives as long as the test: playwright is bound to the event loop it started
    in, and the database fixtures (hence every test) run on a loop of their own. Each browser
    module holds a single test, so this is one Chromium per module all the same.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield Phones(browser, server)
        finally:
            await browser.close()
