"""The H5 login flow: redirects, WeChat OAuth with a checked state, demo personas, logout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backend.accounts.models import User, WechatIdentity
from backend.core.clock import clock
from backend.core.config import reset_settings
from tests.conftest import PROD_ENV
from tests.factories import Neighbourhood
from tests.fakes.wechat_server import FakeWechat
from tests.h5.conftest import csrf_token, login_as

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI"
)


# 企业微信's browser: MicroMessenger and wxwork both in its user agent.
WECOM_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"
)


def _location(response: httpx.Response) -> str:
    return response.headers["location"]


async def test_anonymous_visitor_is_sent_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/h5/")
    assert response.status_code == 302
    assert _location(response) == "/h5/login?next=%2Fh5%2F"

    deep = await client.get("/h5/me?saved=1")
    assert deep.status_code == 302
    assert parse_qs(urlsplit(_location(deep)).query) == {"next": ["/h5/me?saved=1"]}


async def test_dev_login_page_lists_personas(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    page = await client.get("/h5/login?next=/h5/me")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "王阿姨" in page.text and "新邻居" in page.text
    assert 'value="resident"' in page.text
    assert 'name="next" value="/h5/me"' in page.text
    assert "linli_anon" in page.headers["set-cookie"]


async def test_persona_login_sets_session_cookie(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    page = await client.get("/h5/login")
    response = await client.post(
        "/h5/login/persona",
        data={"csrf_token": csrf_token(page.text), "persona": "resident", "next": "/h5/me"},
    )
    assert response.status_code == 303
    assert _location(response) == "/h5/me"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("linli_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure

    home = await client.get("/h5/")
    assert home.status_code == 200
    assert "王阿姨" in home.text


async def test_persona_login_over_https_sets_secure_cookie(
    settings, db, demo: Neighbourhood
) -> None:
    from backend.main import create_app

    transport = httpx.ASGITransport(app=create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        page = await client.get("/h5/login")
        response = await client.post(
            "/h5/login/persona",
            data={"csrf_token": csrf_token(page.text), "persona": "resident"},
        )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_an_https_public_address_makes_cookies_secure_behind_any_proxy(
    settings, db, demo: Neighbourhood, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that talks plain http to the app and forgets X-Forwarded-Proto must not turn
    the session cookie into one a browser would send over http."""
    from backend.main import create_app

    monkeypatch.setenv("LINLI_PUBLIC_BASE_URL", "https://linli.shimenerlu.example.cn")
    reset_settings()
    transport = httpx.ASGITransport(app=create_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/h5/login")
        assert "Secure" in page.headers["set-cookie"]  # the pre-login (CSRF) cookie
        response = await client.post(
            "/h5/login/persona",
            data={"csrf_token": csrf_token(page.text), "persona": "resident"},
            # A browser would only send a Secure cookie over https; here the proxy's leg is http.
            headers={"cookie": f"linli_anon={page.cookies['linli_anon']}"},
        )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_persona_login_without_csrf_token_is_refused(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await client.get("/h5/login")
    response = await client.post("/h5/login/persona", data={"persona": "resident"})
    assert response.status_code == 403
    assert "页面已过期" in response.text
    assert "linli_session" not in response.headers.get("set-cookie", "")


async def test_csrf_token_of_another_browser_is_refused(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    page = await client.get("/h5/login")
    stolen = csrf_token(page.text)
    client.cookies.clear()
    await client.get("/h5/login")  # this browser gets a pre-login cookie of its own
    response = await client.post(
        "/h5/login/persona", data={"csrf_token": stolen, "persona": "resident"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/h5/",
        "//evil.example/h5/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/api/v1/me",
        "/h5/\r\nSet-Cookie: x=1",
    ],
)
async def test_next_never_leaves_the_h5_pages(
    client: httpx.AsyncClient, demo: Neighbourhood, next_path: str
) -> None:
    page = await client.get("/h5/login")
    response = await client.post(
        "/h5/login/persona",
        data={"csrf_token": csrf_token(page.text), "persona": "resident", "next": next_path},
    )
    assert response.status_code == 303
    assert _location(response) == "/h5/"


async def test_unknown_persona_is_a_chinese_page(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    page = await client.get("/h5/login")
    response = await client.post(
        "/h5/login/persona", data={"csrf_token": csrf_token(page.text), "persona": "nobody"}
    )
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "没有这个演示身份" in response.text


async def test_prod_refuses_persona_login(
    client: httpx.AsyncClient, demo: Neighbourhood, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = csrf_token((await client.get("/h5/login")).text)
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    reset_settings()

    page = await client.get("/h5/login")
    assert page.status_code == 200
    assert "请在微信中打开" in page.text
    assert "王阿姨" not in page.text and "persona" not in page.text

    response = await client.post(
        "/h5/login/persona", data={"csrf_token": token, "persona": "resident"}
    )
    assert response.status_code == 403
    assert "演示身份登录仅在开发环境" in response.text
    assert "linli_session" not in response.headers.get("set-cookie", "")


async def _start_oauth(client: httpx.AsyncClient, next_path: str = "/h5/") -> str:
    response = await client.get(
        "/h5/login", params={"next": next_path}, headers={"user-agent": WECHAT_UA}
    )
    assert response.status_code == 302
    target = urlsplit(_location(response))
    query = parse_qs(target.query)
    assert query["scope"] == ["snsapi_base"]
    assert urlsplit(query["redirect_uri"][0]).path == "/h5/auth/callback"
    assert "linli_oauth=" in response.headers["set-cookie"]
    return query["state"][0]


async def test_wechat_oauth_login(
    client: httpx.AsyncClient, fake_wechat: FakeWechat, demo: Neighbourhood
) -> None:
    state = await _start_oauth(client, "/h5/me")
    fake_wechat.register_code("oa-code-1", "oa-openid-1", "union-1")

    response = await client.get(
        "/h5/auth/callback",
        params={"code": "oa-code-1", "state": state},
        headers={"user-agent": WECHAT_UA},
    )
    assert response.status_code == 302
    assert _location(response) == "/h5/me"
    assert "linli_session=" in response.headers["set-cookie"]
    assert len(fake_wechat.calls_to("/sns/oauth2/access_token")) == 1
    identity = await WechatIdentity.get(openid="oa-openid-1")
    assert identity.kind == "official_account"

    home = await client.get("/h5/", headers={"user-agent": WECHAT_UA})
    assert home.status_code == 200
    assert "微信用户" in home.text


async def test_oauth_state_mismatch_is_refused(
    client: httpx.AsyncClient, fake_wechat: FakeWechat, demo: Neighbourhood
) -> None:
    await _start_oauth(client)
    fake_wechat.register_code("oa-code-2", "oa-openid-2")
    response = await client.get(
        "/h5/auth/callback", params={"code": "oa-code-2", "state": "forged-state"}
    )
    assert response.status_code == 403
    assert "登录请求已失效" in response.text
    assert "linli_session" not in response.headers.get("set-cookie", "")
    assert fake_wechat.calls_to("/sns/oauth2/access_token") == []
    assert not await WechatIdentity.exists(openid="oa-openid-2")


async def test_oauth_callback_without_the_browsers_state_cookie_is_refused(
    client: httpx.AsyncClient, fake_wechat: FakeWechat, demo: Neighbourhood
) -> None:
    state = await _start_oauth(client)
    client.cookies.clear()  # e.g. a login link forwarded to someone else
    fake_wechat.register_code("oa-code-3", "oa-openid-3")
    response = await client.get("/h5/auth/callback", params={"code": "oa-code-3", "state": state})
    assert response.status_code == 403
    assert fake_wechat.calls_to("/sns/oauth2/access_token") == []


async def test_oauth_state_expires(
    client: httpx.AsyncClient, fake_wechat: FakeWechat, demo: Neighbourhood
) -> None:
    from datetime import timedelta

    state = await _start_oauth(client)
    clock.advance(timedelta(minutes=11))
    fake_wechat.register_code("oa-code-4", "oa-openid-4")
    response = await client.get("/h5/auth/callback", params={"code": "oa-code-4", "state": state})
    assert response.status_code == 403


async def test_code_rejected_by_wechat_is_a_page_not_a_500(
    client: httpx.AsyncClient, fake_wechat: FakeWechat, demo: Neighbourhood
) -> None:
    state = await _start_oauth(client)
    response = await client.get(
        "/h5/auth/callback", params={"code": "never-registered", "state": state}
    )
    assert response.status_code == 401
    assert "微信登录失败" in response.text
    assert "重新登录" in response.text
    assert "linli_session" not in response.headers.get("set-cookie", "")


async def test_oauth_callback_without_code_is_a_page(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    state = await _start_oauth(client)
    response = await client.get("/h5/auth/callback", params={"state": state})
    assert response.status_code == 401
    assert "微信授权" in response.text


async def test_logout(client: httpx.AsyncClient, demo: Neighbourhood) -> None:
    await login_as(client, "resident")
    home = await client.get("/h5/")
    kept = client.cookies["linli_session"]
    response = await client.post("/h5/logout", data={"csrf_token": csrf_token(home.text)})
    assert response.status_code == 200
    assert "您已退出登录" in response.text
    assert 'linli_session=""' in response.headers["set-cookie"]
    assert (await client.get("/h5/")).status_code == 302
    # A copy of the cookie kept elsewhere (another tab, a stolen value) is dead as well.
    client.cookies.set("linli_session", kept)
    assert (await client.get("/h5/")).status_code == 302
    assert (await User.get(id=demo.resident.id)).token_version == 1

    client.cookies.clear()
    await login_as(client, "resident")
    assert (await client.get("/h5/")).status_code == 200


async def test_logout_needs_csrf(client: httpx.AsyncClient, demo: Neighbourhood) -> None:
    await login_as(client, "resident")
    response = await client.post("/h5/logout")
    assert response.status_code == 403
    assert (await client.get("/h5/")).status_code == 200


async def test_expired_session_goes_back_to_login(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    from datetime import timedelta

    await login_as(client, "resident")
    clock.advance(timedelta(days=8))
    response = await client.get("/h5/")
    assert response.status_code == 302
    assert _location(response).startswith("/h5/login")
    assert 'linli_session=""' in response.headers["set-cookie"]


async def test_deleted_user_session_goes_back_to_login(
    client: httpx.AsyncClient, demo: Neighbourhood
) -> None:
    await login_as(client, "newcomer")
    await User.filter(id=demo.newcomer.id).delete()
    assert (await client.get("/h5/")).status_code == 302


async def test_wecom_browser_is_not_sent_to_official_account_oauth(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    reset_settings()

    wecom = await client.get("/h5/login", headers={"user-agent": WECOM_UA})
    wechat = await client.get("/h5/login", headers={"user-agent": WECHAT_UA})

    # Not the OAuth redirect WeChat would refuse inside 企业微信: a page saying where to go.
    assert wecom.status_code == 200
    assert "企业微信中无法登录" in wecom.text
    assert wechat.status_code == 302
