"""The wechatpy factories send every call to LINLI_WECHAT_API_BASE, never to the internet."""

import asyncio

import pytest

from backend.accounts import wechat
from backend.core.config import WECHAT_API_BASE


def test_api_client_moves_every_base_url(settings, fake_wechat):
    client = wechat.api_client(settings, appid=settings.oa_appid, secret=settings.oa_secret)

    assert fake_wechat.base_url + "/cgi-bin/" == client.API_BASE_URL
    assert fake_wechat.base_url + "/" == client.wxa.API_BASE_URL
    for api in vars(client).values():
        base = getattr(api, "API_BASE_URL", "") or ""
        assert not base.startswith(WECHAT_API_BASE), type(api).__name__


async def test_api_client_fetches_its_token_and_sends_through_the_fake(settings, fake_wechat):
    client = wechat.api_client(settings, appid=settings.oa_appid, secret=settings.oa_secret)

    result = await asyncio.to_thread(
        client.message.send_template, "oa-openid", "oa-tmpl-notice", {"first": {"value": "你好"}}
    )

    assert result["errcode"] == 0
    # The stable interface, so that this fetch does not end the token the bot sends with.
    assert fake_wechat.calls_to("/cgi-bin/token") == []
    (token_call,) = fake_wechat.calls_to("/cgi-bin/stable_token")
    assert token_call.body["appid"] == settings.oa_appid
    (send,) = fake_wechat.calls_to("/cgi-bin/message/template/send")
    assert send.query["access_token"].startswith(f"token-{settings.oa_appid}-")
    assert send.body["touser"] == "oa-openid"


def test_code_to_session_reads_openid_and_unionid(settings, fake_wechat):
    fake_wechat.register_code("js-code", "the-openid", unionid="the-unionid")

    info = wechat.code_to_session(settings, "js-code")

    assert info == wechat.WeChatIdentityInfo(openid="the-openid", unionid="the-unionid")
    (call,) = fake_wechat.calls_to("/sns/jscode2session")
    assert call.query["secret"] == settings.mp_secret


def test_oauth_code_to_identity_goes_to_the_fake(settings, fake_wechat):
    fake_wechat.register_code("oauth-code", "oa-openid")

    info = wechat.oauth_code_to_identity(settings, "oauth-code")

    assert info == wechat.WeChatIdentityInfo(openid="oa-openid", unionid=None)
    (call,) = fake_wechat.calls_to("/sns/oauth2/access_token")
    assert call.query["appid"] == settings.oa_appid


def test_rejected_codes_raise_login_error(settings, fake_wechat):
    with pytest.raises(wechat.WeChatLoginError):
        wechat.code_to_session(settings, "bad")
    with pytest.raises(wechat.WeChatLoginError):
        wechat.oauth_code_to_identity(settings, "bad")
