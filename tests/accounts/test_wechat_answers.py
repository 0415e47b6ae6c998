"""WeChat's answers are checked before anything in them is used: a malformed answer is
502 wechat_unavailable (never a 500, never a stored identity), a refused code stays 401."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from backend.accounts.models import User, WechatIdentity
from tests.fakes.wechat_server import FakeWechat

LOGIN = "/api/v1/auth/miniprogram/login"
CODE2SESSION = "/sns/jscode2session"
OAUTH = "/sns/oauth2/access_token"
WECHAT_UA = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.47"
GOOD_SESSION = {"openid": "o" * 28, "session_key": "c2Vzc2lvbg=="}
GOOD_OAUTH = {
    "openid": "o" * 28,
    "access_token": "oauth-token",
    "expires_in": 7200,
    "refresh_token": "oauth-refresh",
    "scope": "snsapi_base",
}

MALFORMED_SESSIONS = {
    "openid over the column": {**GOOD_SESSION, "openid": "o" * 200},
    "openid with spaces": {**GOOD_SESSION, "openid": "o o"},
    "openid empty": {**GOOD_SESSION, "openid": ""},
    "openid a number": {**GOOD_SESSION, "openid": 12345},
    "openid missing": {"session_key": "c2Vzc2lvbg=="},
    "unionid too long": {**GOOD_SESSION, "unionid": "u" * 129},
    "unionid a list": {**GOOD_SESSION, "unionid": ["u"]},
    "session_key missing": {"openid": "o" * 28},
    "session_key with control characters": {**GOOD_SESSION, "session_key": "a\x00b"},
    "errcode not a number": {"errcode": "boom", "errmsg": "x"},
    "a list": ["openid"],
    "a string": "openid",
    "not JSON": b"<html>502 Bad Gateway</html>",
}

MALFORMED_OAUTH = {
    "openid over the column": {**GOOD_OAUTH, "openid": "o" * 129},
    "openid with a newline": {**GOOD_OAUTH, "openid": "abc\ndef"},
    "openid missing": {k: v for k, v in GOOD_OAUTH.items() if k != "openid"},
    "unionid with slashes": {**GOOD_OAUTH, "unionid": "../../etc"},
    "access_token missing": {k: v for k, v in GOOD_OAUTH.items() if k != "access_token"},
    "access_token with spaces": {**GOOD_OAUTH, "access_token": "a b"},
    "expires_in a string": {**GOOD_OAUTH, "expires_in": "7200"},
    "expires_in negative": {**GOOD_OAUTH, "expires_in": -1},
    "a list": [GOOD_OAUTH],
    "not JSON": b"not json at all",
}


def _error(response) -> dict:
    return response.json()["error"]


@pytest.mark.parametrize("answer", MALFORMED_SESSIONS.values(), ids=MALFORMED_SESSIONS.keys())
async def test_malformed_code2session_answer_is_502(client, fake_wechat: FakeWechat, answer):
    fake_wechat.answer_next(CODE2SESSION, answer)

    response = await client.post(LOGIN, json={"code": "any-code"})

    assert response.status_code == 502, response.text
    assert _error(response)["code"] == "wechat_unavailable"
    assert "微信" in _error(response)["message"]
    assert await WechatIdentity.all().count() == 0
    assert await User.all().count() == 0


async def test_wechat_server_error_is_502(client, fake_wechat: FakeWechat):
    fake_wechat.answer_next(CODE2SESSION, {"errmsg": "busy"}, status=503)

    response = await client.post(LOGIN, json={"code": "any-code"})

    assert response.status_code == 502
    assert _error(response)["code"] == "wechat_unavailable"


async def test_a_well_formed_answer_still_logs_in(client, fake_wechat: FakeWechat):
    fake_wechat.answer_next(CODE2SESSION, {**GOOD_SESSION, "unionid": "U-nion_1"})

    response = await client.post(LOGIN, json={"code": "any-code"})

    assert response.status_code == 200, response.text
    identity = await WechatIdentity.get(openid="o" * 28)
    assert identity.unionid == "U-nion_1"


async def test_a_refused_code_stays_401(client, fake_wechat: FakeWechat):
    fake_wechat.fail_next(CODE2SESSION, 40029, errmsg="invalid code")

    response = await client.post(LOGIN, json={"code": "any-code"})

    assert response.status_code == 401
    assert _error(response)["code"] == "wechat_login_failed"


async def _oauth_state(client) -> str:
    start = await client.get("/h5/login", headers={"user-agent": WECHAT_UA})
    assert start.status_code == 302
    return parse_qs(urlsplit(start.headers["location"]).query)["state"][0]


@pytest.mark.parametrize("answer", MALFORMED_OAUTH.values(), ids=MALFORMED_OAUTH.keys())
async def test_malformed_oauth_answer_is_a_502_page(client, fake_wechat: FakeWechat, answer):
    state = await _oauth_state(client)
    fake_wechat.answer_next(OAUTH, answer)

    response = await client.get(
        "/h5/auth/callback",
        params={"code": "oa-code", "state": state},
        headers={"user-agent": WECHAT_UA},
    )

    assert response.status_code == 502
    assert "text/html" in response.headers["content-type"]
    assert "微信服务暂时无法连接" in response.text
    assert "linli_session" not in response.headers.get("set-cookie", "")
    assert await WechatIdentity.all().count() == 0


async def test_a_well_formed_oauth_answer_logs_in(client, fake_wechat: FakeWechat):
    state = await _oauth_state(client)
    fake_wechat.answer_next(OAUTH, GOOD_OAUTH)

    response = await client.get(
        "/h5/auth/callback",
        params={"code": "oa-code", "state": state},
        headers={"user-agent": WECHAT_UA},
    )

    assert response.status_code == 302
    assert await WechatIdentity.exists(openid="o" * 28, kind="official_account")


async def test_openapi_documents_wechat_unavailable(client):
    spec = (await client.get("/openapi.json")).json()
    login = spec["paths"][LOGIN]["post"]["responses"]
    assert "wechat_unavailable" in login["502"]["description"]
    assert "wechat_login_failed" in login["401"]["description"]
