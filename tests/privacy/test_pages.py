"""The H5 side: 隐私政策 for everyone, 导出 and 注销 from 「我的」, at phone width."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import httpx
from openpyxl import load_workbook

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.privacy import service as privacy_service
from tests.factories import make_community, make_user, session_cookies
from tests.h5.conftest import csrf_token
from tests.privacy.scenario import NAME, PHONE, build_world

VIEWPORT = '<meta name="viewport" content="width=device-width'


async def test_privacy_notice_is_public_and_complete(client: httpx.AsyncClient):
    page = await client.get("/h5/privacy")

    assert page.status_code == 200
    assert VIEWPORT in page.text
    for heading in ("收集哪些信息", "谁能看到", "保存多久", "您的权利", "联系我们"):
        assert heading in page.text
    for right in ("查阅和复制", "更正", "删除"):
        assert right in page.text
    assert 'href="/h5/me/data"' in page.text and 'href="/h5/me/close"' in page.text


async def test_login_and_profile_link_the_notice_and_say_why_a_phone(client: httpx.AsyncClient):
    community = await make_community()
    user = await make_user(community=community, persona="resident")
    login = await client.get("/h5/login")
    assert 'href="/h5/privacy"' in login.text

    client.cookies.update(session_cookies(user))
    profile = await client.get("/h5/me")

    assert profile.status_code == 200
    assert 'aria-describedby="phone-purpose"' in profile.text
    purpose = re.search(r'id="phone-purpose">([^<]+)', profile.text).group(1)
    assert "仅用于社区工作人员" in purpose
    for link in ("/h5/privacy", "/h5/me/data", "/h5/me/close"):
        assert f'href="{link}"' in profile.text


async def test_every_page_asking_for_a_phone_says_why(client: httpx.AsyncClient):
    community = await make_community()
    user = await make_user(community=community)
    client.cookies.update(session_cookies(user))
    register = await client.get("/h5/party/register")
    assert register.status_code == 200
    assert 'type="tel"' in register.text
    assert "手机号和居住楼栋仅供本社区工作人员" in register.text


async def test_export_from_the_page(client: httpx.AsyncClient):
    world = await build_world()
    client.cookies.update(session_cookies(world.person))

    page = await client.get("/h5/me/data")
    assert page.status_code == 200 and VIEWPORT in page.text
    for section in privacy_service.SECTIONS:
        assert section.title in page.text
    xlsx = await client.get("/h5/me/export?format=xlsx")
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book["党员报到"]["B2"].value == NAME
    as_json = await client.get("/h5/me/export?format=json")
    assert as_json.json()["profile"][0]["phone"] == PHONE


async def test_closing_from_the_page(client: httpx.AsyncClient):
    world = await build_world()
    cookie = session_cookies(world.person)
    client.cookies.update(cookie)

    confirm = await client.get("/h5/me/close")
    assert confirm.status_code == 200 and VIEWPORT in confirm.text
    assert "无法恢复" in confirm.text and 'name="confirm"' in confirm.text
    token = csrf_token(confirm.text)
    wrong = await client.post("/h5/me/close", data={"csrf_token": token, "confirm": "确认"})
    assert wrong.status_code == 422
    assert "请输入“注销”" in wrong.text
    assert (await User.get(id=world.person.id)).erased_at is None

    done = await client.post("/h5/me/close", data={"csrf_token": token, "confirm": "注销"})

    assert done.status_code == 200
    assert "账号已注销" in done.text
    assert 'linli_session=""' in done.headers["set-cookie"]
    assert (await User.get(id=world.person.id)).nickname == privacy_service.ERASED_NAME
    # A copy of the old cookie (another tab, another phone) is dead too.
    client.cookies.clear()
    client.cookies.update(cookie)
    again = await client.get("/h5/me")
    assert again.status_code == 302 and again.headers["location"].startswith("/h5/login")


async def test_closing_needs_the_form_token(client: httpx.AsyncClient):
    user = await make_user(community=await make_community())
    client.cookies.update(session_cookies(user))
    response = await client.post("/h5/me/close", data={"confirm": "注销"})
    assert response.status_code == 403
    assert (await User.get(id=user.id)).erased_at is None


async def test_h5_logout_ends_the_token_everywhere(client: httpx.AsyncClient):
    user = await make_user(community=await make_community())
    cookie = session_cookies(user)
    bearer = {"Authorization": f"Bearer {accounts_service.issue_access_token(user_id=user.id)}"}
    client.cookies.update(cookie)
    home = await client.get("/h5/")

    out = await client.post("/h5/logout", data={"csrf_token": csrf_token(home.text)})

    assert out.status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    client.cookies.clear()
    client.cookies.update(cookie)
    assert (await client.get("/h5/")).status_code == 302


def test_accounts_never_import_privacy():
    """Privacy may read every domain; accounts, which every domain imports, must not import it."""
    for path in Path(accounts_service.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
                assert not any("privacy" in name for name in names), path
