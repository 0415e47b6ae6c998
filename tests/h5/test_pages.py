"""H5 pages: the home page, 「我的」, placeholders, CSRF on forms, phones masked, no CDN."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from tests.factories import Neighbourhood
from tests.h5.conftest import csrf_token, login_as

CAPABILITY_PATHS = ("/h5/party", "/h5/wishes", "/h5/activities", "/h5/points", "/h5/notices")
CAPABILITY_NAMES = ("在职党员报到", "微心愿", "活动报名", "午间一小时", "积分兑换", "通知公告")


async def test_home_shows_user_community_and_five_entries(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    home = await client.get("/h5/")
    assert home.status_code == 200
    assert '<html lang="zh-CN">' in home.text
    assert 'name="viewport"' in home.text
    assert "王阿姨" in home.text and "大田社区" in home.text
    for path in CAPABILITY_PATHS:
        assert f'href="{path}"' in home.text
    for name in CAPABILITY_NAMES:
        assert name in home.text
    assert "请选择您所在的社区" not in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]


async def test_home_prompts_for_a_community(client: httpx.AsyncClient, demo: Neighbourhood) -> None:
    await login_as(client, "newcomer")
    home = await client.get("/h5/")
    assert "新邻居" in home.text
    assert "请选择您所在的社区" in home.text
    assert 'href="/h5/me"' in home.text


async def test_pages_load_nothing_from_outside(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    for path in ("/h5/", "/h5/me", "/h5/login", "/h5/wishes"):
        html = (await client.get(path)).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    stylesheets = re.findall(r'href="(/h5/static/[^"]+)"', (await client.get("/h5/")).text)
    assert any("weui/weui.min.css?v=" in s for s in stylesheets)
    for url in stylesheets:
        response = await client.get(url)
        assert response.status_code == 200
        assert "text/css" in response.headers["content-type"]
        assert "max-age=31536000" in response.headers["cache-control"]


async def test_weui_is_vendored_with_its_licence(client: httpx.AsyncClient) -> None:
    css = await client.get("/h5/static/weui/weui.min.css")
    assert css.status_code == 200 and ".weui-grid" in css.text
    licence = await client.get("/h5/static/weui/LICENSE.txt")
    assert "MIT License" in licence.text
    assert (await client.get("/h5/static/../routes.py")).status_code == 404


async def test_every_home_entry_has_a_real_page(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    from h5.pages.home import CAPABILITIES

    await login_as(client, "resident")
    for entry in CAPABILITIES:
        page = await client.get(entry.path)
        assert page.status_code == 200, entry.path
        assert "即将上线" not in page.text


async def test_pages_are_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/h5")]


async def test_profile_chooses_community_and_building(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "newcomer")
    page = await client.get("/h5/me")
    assert page.status_code == 200
    assert "大田社区" in page.text and "新闸社区" in page.text and "中凯大厦" in page.text
    response = await client.post(
        "/h5/me",
        data={
            "csrf_token": csrf_token(page.text),
            "nickname": "李先生",
            "phone": "",
            "community_id": str(demo.other_community.id),
            "building_id": str(demo.building.id),
            "unit_id": "",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/h5/me?saved=1"
    user = await User.get(id=demo.newcomer.id)
    assert (user.nickname, user.community_id, user.building_id, user.unit_id) == (
        "李先生",
        demo.other_community.id,
        demo.building.id,
        None,
    )
    saved = await client.get("/h5/me?saved=1")
    assert "已保存" in saved.text
    assert f'<option value="{demo.other_community.id}" selected>' in saved.text
    home = await client.get("/h5/")
    assert "新闸社区" in home.text and "中凯大厦" in home.text


async def test_profile_clears_a_choice(client: httpx.AsyncClient, demo: Neighbourhood) -> None:
    await login_as(client, "resident")
    page = await client.get("/h5/me")
    response = await client.post(
        "/h5/me",
        data={"csrf_token": csrf_token(page.text), "nickname": "王阿姨", "community_id": ""},
    )
    assert response.status_code == 303
    assert (await User.get(id=demo.resident.id)).community_id is None


async def test_profile_rejects_unknown_community_on_the_page(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    page = await client.get("/h5/me")
    response = await client.post(
        "/h5/me",
        data={"csrf_token": csrf_token(page.text), "nickname": "王阿姨", "community_id": "99999"},
    )
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "社区不存在" in response.text
    assert 'name="community_id"' in response.text  # the form again, with the reason on top
    assert (await User.get(id=demo.resident.id)).community_id == demo.community.id


@pytest.mark.parametrize(
    "data",
    [{"community_id": "abc"}, {"nickname": "x" * 65}, {"phone": "12345"}, {"nickname": " "}],
)
async def test_bad_profile_input_is_a_page_not_a_500(
    client: httpx.AsyncClient, demo: Neighbourhood, data: dict[str, str]
) -> None:
    await login_as(client, "resident")
    page = await client.get("/h5/me")
    response = await client.post(
        "/h5/me", data={"csrf_token": csrf_token(page.text), "nickname": "王阿姨", **data}
    )
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "请" in response.text


async def test_profile_post_without_csrf_is_refused(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    response = await client.post(
        "/h5/me", data={"nickname": "被篡改", "community_id": str(demo.other_community.id)}
    )
    assert response.status_code == 403
    assert "页面已过期" in response.text
    assert "text/html" in response.headers["content-type"]
    assert (await User.get(id=demo.resident.id)).nickname == "王阿姨"


async def test_pre_login_csrf_token_does_not_work_after_login(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    anonymous_token = csrf_token((await client.get("/h5/login")).text)
    await login_as(client, "resident")
    response = await client.post(
        "/h5/me", data={"csrf_token": anonymous_token, "nickname": "被篡改"}
    )
    assert response.status_code == 403


async def test_json_post_to_a_page_is_refused(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    response = await client.post("/h5/me", json={"nickname": "被篡改"})
    assert response.status_code == 403


async def test_phone_is_masked_on_every_page(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await accounts_service.update_profile(user=demo.resident, phone="13812345678")
    await login_as(client, "resident")
    for path in ("/h5/", "/h5/me", "/h5/me?saved=1", "/h5/points", "/h5/login"):
        html = (await client.get(path)).text
        assert "13812345678" not in html, path
        assert "12345678" not in html, path
    assert "138****5678" in (await client.get("/h5/")).text
    assert "138****5678" in (await client.get("/h5/me")).text


async def test_profile_changes_phone_and_shows_it_masked(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "resident")
    page = await client.get("/h5/me")
    response = await client.post(
        "/h5/me",
        data={
            "csrf_token": csrf_token(page.text),
            "nickname": "王阿姨",
            "phone": "139 0000 1111",
            "community_id": str(demo.community.id),
        },
    )
    assert response.status_code == 303
    html = (await client.get("/h5/me")).text
    assert "139****1111" in html and "13900001111" not in html


async def test_rate_limited_page_is_chinese(
    client: httpx.AsyncClient, demo: Neighbourhood, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import reset_settings

    await login_as(client, "resident")
    monkeypatch.setenv("LINLI_RATE_LIMITS", "on")
    monkeypatch.setenv("LINLI_RATE_LIMIT_USER_PER_MINUTE", "2")
    reset_settings()
    for _ in range(10):
        limited = await client.get("/h5/")
        if limited.status_code == 429:
            break
    assert limited.status_code == 429
    assert "操作太频繁" in limited.text
    assert "retry-after" in limited.headers


def test_every_csrf_macro_import_sees_the_token() -> None:
    # A macro imported without context renders the token of an empty context: a form whose
    # hidden field is blank and whose post is refused in a real browser.
    templates = Path(__file__).resolve().parents[2] / "h5" / "templates"
    blind = [
        f"{path.relative_to(templates)}: {line.strip()}"
        for path in templates.rglob("*.html")
        for line in path.read_text().splitlines()
        if re.search(r"\bimport\b[^%]*\bcsrf\b", line) and "with context" not in line
    ]
    assert not blind, blind
