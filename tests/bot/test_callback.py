"""The official-account callback: signature, timestamp window, nonce replay, safe mode, replies."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from backend.accounts.models import User, WechatIdentity
from backend.core.clock import clock
from backend.core.config import reset_settings

NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
OPENID = "oLinliResident001"
ACCOUNT = "gh_linli_demo"


@pytest.fixture(autouse=True)
def _frozen_clock() -> None:
    clock.set(NOW)


def fresh_nonce() -> str:
    return uuid.uuid4().hex[:16]


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed_query(settings, *, timestamp: int | None = None, nonce: str | None = None, **extra):
    timestamp = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    nonce = nonce or fresh_nonce()
    return {
        "signature": sign(settings.oa_token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        **extra,
    }


def text_message(content: str, *, openid: str = OPENID) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(NOW.timestamp())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content>"
        "<MsgId>6054768590064713728</MsgId></xml>"
    )


def event_message(event: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{int(NOW.timestamp())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event></xml>"
    )


async def post_plain(client, settings, xml: str, **query):
    return await client.post(
        "/wechat/callback",
        params=signed_query(settings, **query),
        content=xml.encode(),
        headers={"Content-Type": "text/xml"},
    )


def reply_of(response) -> dict:
    assert response.status_code == 200, response.text
    return xmltodict.parse(response.text)["xml"]


def assert_forbidden(response) -> None:
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def link_user(settings, *, balance: int) -> User:
    user = await User.create(nickname="王阿姨", points_balance=balance)
    await WechatIdentity.create(
        user=user, kind="official_account", app_id=settings.oa_appid, openid=OPENID
    )
    return user


# --- server verification (GET) ---


async def test_echostr_is_echoed_when_signed(client, settings):
    response = await client.get(
        "/wechat/callback", params=signed_query(settings, echostr="8264095311450364837")
    )
    assert response.status_code == 200
    assert response.text == "8264095311450364837"
    assert response.headers["content-type"].startswith("text/plain")


async def test_wrong_signature_is_refused(client, settings):
    query = signed_query(settings, echostr="123")
    query["signature"] = sign("not-our-token", query["timestamp"], query["nonce"])
    response = await client.get("/wechat/callback", params=query)
    assert_forbidden(response)
    assert "123" not in response.text


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
async def test_missing_signature_params_are_refused(client, settings, missing):
    query = signed_query(settings, echostr="123")
    del query[missing]
    assert_forbidden(await client.get("/wechat/callback", params=query))


async def test_missing_echostr_is_bad_request(client, settings):
    response = await client.get("/wechat/callback", params=signed_query(settings))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("skew", [-301, 301])
async def test_stale_or_future_timestamp_is_refused(client, settings, skew):
    query = signed_query(settings, timestamp=int(NOW.timestamp()) + skew, echostr="123")
    assert_forbidden(await client.get("/wechat/callback", params=query))


async def test_timestamp_window_follows_the_clock(client, settings):
    query = signed_query(settings, echostr="123")
    clock.advance(timedelta(seconds=299))
    assert (await client.get("/wechat/callback", params=query)).status_code == 200
    query = signed_query(settings, echostr="123")
    clock.advance(timedelta(seconds=2))
    assert_forbidden(await client.get("/wechat/callback", params=query))


async def test_replayed_nonce_is_refused(client, settings):
    query = signed_query(settings, echostr="123")
    assert (await client.get("/wechat/callback", params=query)).status_code == 200
    assert_forbidden(await client.get("/wechat/callback", params=query))


async def test_replayed_message_is_not_answered_twice(client, settings):
    query = signed_query(settings)
    body = text_message("活动").encode()
    first = await client.post("/wechat/callback", params=query, content=body)
    assert first.status_code == 200
    assert_forbidden(await client.post("/wechat/callback", params=query, content=body))


# --- plain-mode messages and events ---


async def test_subscribe_event_gets_the_welcome(client, settings):
    reply = reply_of(await post_plain(client, settings, event_message("subscribe")))
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == OPENID
    assert reply["FromUserName"] == ACCOUNT
    assert "欢迎" in reply["Content"]
    assert f"{settings.public_base_url}/h5/" in reply["Content"]


@pytest.mark.parametrize("event", ["unsubscribe", "some_future_event"])
async def test_other_events_get_no_reply(client, settings, event):
    response = await post_plain(client, settings, event_message(event))
    assert response.status_code == 200
    assert response.text == "success"


async def test_points_keyword_answers_the_linked_balance(client, settings):
    await link_user(settings, balance=128)
    reply = reply_of(await post_plain(client, settings, text_message("积分")))
    assert "128" in reply["Content"]


async def test_points_keyword_explains_linking_when_unlinked(client, settings):
    other = await User.create(nickname="别的公众号", points_balance=99)
    await WechatIdentity.create(
        user=other, kind="official_account", app_id="wx_other_account", openid=OPENID
    )
    reply = reply_of(await post_plain(client, settings, text_message(" 积分 ")))
    assert "99" not in reply["Content"]
    assert "关联" in reply["Content"]
    assert f"{settings.public_base_url}/h5/" in reply["Content"]


@pytest.mark.parametrize(
    ("keyword", "path"), [("活动", "/h5/activities"), ("心愿", "/h5/wishes"), ("报到", "/h5/party")]
)
async def test_capability_keywords_link_to_their_page(client, settings, keyword, path):
    reply = reply_of(await post_plain(client, settings, text_message(keyword)))
    assert settings.public_base_url + path in reply["Content"]


async def test_anything_else_gets_the_keyword_menu(client, settings):
    reply = reply_of(await post_plain(client, settings, text_message("你好")))
    for keyword in ("积分", "活动", "心愿", "报到"):
        assert keyword in reply["Content"]


MALFORMED = [
    "",
    "not xml at all",
    "<xml><broken",
    "<xml></xml>",
    "<other><MsgType>text</MsgType></other>",
    "<xml><MsgType><a>1</a></MsgType></xml>",
    "<xml><MsgType>text</MsgType><MsgType>event</MsgType></xml>",
    '<!DOCTYPE xml [<!ENTITY a "aaaaaaaa">]><xml><MsgType>&a;</MsgType></xml>',
    "<xml><MsgType>text</MsgType><Content>积分</Content></xml>",
    text_message("积分", openid="o]]><Content>x</Content><x><![CDATA["),
]


@pytest.mark.parametrize("xml", MALFORMED)
async def test_malformed_xml_is_a_clear_400(client, settings, xml):
    response = await post_plain(client, settings, xml)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


async def test_oversized_body_is_refused(client, settings):
    response = await post_plain(client, settings, text_message("积" * 70_000))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_unsigned_post_is_not_processed(client, settings):
    await link_user(settings, balance=7)
    query = signed_query(settings)
    query["signature"] = "0" * 40
    response = await client.post(
        "/wechat/callback", params=query, content=text_message("积分").encode()
    )
    assert_forbidden(response)


# --- AES safe mode ---


@pytest.fixture
def aes_key(settings, monkeypatch) -> str:
    key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    assert len(key) == 43
    monkeypatch.setenv("LINLI_OA_AES_KEY", key)
    reset_settings()
    return key


def safe_mode_request(settings, key: str, xml: str, *, timestamp: int | None = None):
    crypto = WeChatCrypto(settings.oa_token, key, settings.oa_appid)
    timestamp = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    nonce = fresh_nonce()
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    params = {
        "signature": sign(settings.oa_token, timestamp, nonce),
        "msg_signature": xmltodict.parse(envelope)["xml"]["MsgSignature"],
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "openid": OPENID,
    }
    return crypto, params, envelope


async def test_safe_mode_round_trip(client, settings, aes_key):
    await link_user(settings, balance=256)
    crypto, params, envelope = safe_mode_request(settings, aes_key, text_message("积分"))
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    outer = reply_of(response)
    assert "Content" not in outer
    plain = crypto.decrypt_message(
        response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    reply = xmltodict.parse(plain)["xml"]
    assert reply["ToUserName"] == OPENID
    assert "256" in reply["Content"]


async def test_safe_mode_subscribe_welcome(client, settings, aes_key):
    crypto, params, envelope = safe_mode_request(settings, aes_key, event_message("subscribe"))
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    outer = reply_of(response)
    plain = crypto.decrypt_message(
        response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    assert "欢迎" in xmltodict.parse(plain)["xml"]["Content"]


async def test_safe_mode_wrong_msg_signature_is_refused(client, settings, aes_key):
    _, params, envelope = safe_mode_request(settings, aes_key, text_message("积分"))
    params["msg_signature"] = sign(settings.oa_token, params["timestamp"], params["nonce"])
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    assert_forbidden(response)


async def test_safe_mode_stale_timestamp_is_refused(client, settings, aes_key):
    stale = int(NOW.timestamp()) - 600
    _, params, envelope = safe_mode_request(
        settings, aes_key, text_message("积分"), timestamp=stale
    )
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    assert_forbidden(response)


async def test_safe_mode_replay_is_refused(client, settings, aes_key):
    _, params, envelope = safe_mode_request(settings, aes_key, text_message("活动"))
    first = await client.post("/wechat/callback", params=params, content=envelope.encode())
    assert first.status_code == 200
    again = await client.post("/wechat/callback", params=params, content=envelope.encode())
    assert_forbidden(again)


async def test_safe_mode_refuses_plain_messages(client, settings, aes_key):
    assert_forbidden(await post_plain(client, settings, text_message("积分")))


async def test_safe_mode_payload_under_another_key_is_a_400(client, settings, aes_key):
    other_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    _, params, envelope = safe_mode_request(settings, other_key, text_message("积分"))
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


async def test_safe_mode_without_a_key_is_refused(client, settings):
    query = signed_query(settings, encrypt_type="aes", msg_signature="0" * 40)
    response = await client.post(
        "/wechat/callback", params=query, content=b"<xml><Encrypt>x</Encrypt></xml>"
    )
    assert_forbidden(response)


async def test_callback_keeps_openapi_valid(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert "/wechat/callback" not in response.json()["paths"]
