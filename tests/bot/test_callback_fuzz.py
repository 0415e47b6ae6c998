"""The official-account callback under `linli serve`, with control characters and `]]>` in
signed text messages, in plain and in safe (AES) mode: never a 5xx, and every reply is
well-formed XML addressed to the sender.

Messages are written the three ways a sender can write them: CDATA split around `]]>` (as
WeChat does), entity-escaped text, and a naive CDATA section that `]]>` breaks open.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from wechatpy.crypto import WeChatCrypto

from bot.callback import NO_REPLY
from tests.conftest import run_linli
from tests.contract.stack import SEED, replay_hint

pytestmark = pytest.mark.slow

ACCOUNT = "gh_linli_demo"
# The demo resident's official-account identity (`linli seed-demo`).
OPENID = "demo-resident"
PIECES = [
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\ud800",
    "\uffff",
    "]]>",
    "]]",
    "<![CDATA[",
    "</Content>",
    "&",
    "<",
    "积分",
    "活动",
    "心愿",
    "报到",
    " ",
    "\n",
]
CONTENT = st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join)


def _content_xml(content: str, style: str) -> str:
    if style == "cdata":
        return "<Content><![CDATA[" + content.replace("]]>", "]]]]><![CDATA[>") + "]]></Content>"
    if style == "escaped":
        return f"<Content>{escape(content)}</Content>"
    return f"<Content><![CDATA[{content}]]></Content>"


def _message(content: str, style: str, sender: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"{_content_xml(content, style)}"
        "<MsgId>6054768590064713728</MsgId></xml>"
    )


def _signed_query(token: str) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:16]
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def _explore(send, *, content: st.SearchStrategy[str], examples: int) -> None:
    """Send drawn messages with `send(xml, sender) -> (response, reply or None)`; no answer
    may be a 5xx or a malformed reply, and both replies and refusals must occur."""
    answered: dict[int, int] = {}
    problems: list[str] = []

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(
        content=content,
        style=st.sampled_from(["cdata", "escaped", "naive"]),
        sender=st.sampled_from([OPENID, "demo-staff", "oUnknownSender01"]),
    )
    @hypothesis.example(content="积分]]>", style="cdata", sender=OPENID)
    @hypothesis.example(content="活动\x00]]><x/>", style="naive", sender=OPENID)
    def run(content: str, style: str, sender: str) -> None:
        xml = _message(content, style, sender)
        response, reply = send(xml)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        problem = _problem(response, reply, sender)
        if problem and len(problems) < 5:
            problems.append(f"{xml!r}: {problem}")

    run()
    assert not problems, f"({replay_hint()})\n" + "\n".join(problems)
    # Both kinds of answer were exercised: replies to readable messages, refusals of broken ones.
    assert answered.get(200) and answered.get(400), answered


def _seeded_server(live_server_factory, **env: str):
    server = live_server_factory(workers=1, **env)
    seeded = run_linli("seed-demo", env=server.env)
    assert seeded.returncode == 0, seeded.stderr
    return server


def test_odd_text_messages_get_a_well_formed_answer(settings, live_server_factory):
    server = _seeded_server(live_server_factory)

    with httpx.Client(base_url=server.base_url, timeout=30) as client:

        def send(xml: str) -> tuple[httpx.Response, bytes | None]:
            response = client.post(
                "/wechat/callback",
                params=_signed_query(settings.oa_token),
                # A lone surrogate can only travel as the invalid UTF-8 it would be encoded to.
                content=xml.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "text/xml"},
            )
            return response, response.content

        _explore(send, content=CONTENT, examples=60)


def test_odd_text_messages_in_safe_mode_get_a_well_formed_answer(settings, live_server_factory):
    key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    server = _seeded_server(live_server_factory, LINLI_OA_AES_KEY=key)
    crypto = WeChatCrypto(settings.oa_token, key, settings.oa_appid)

    with httpx.Client(base_url=server.base_url, timeout=30) as client:

        def send(xml: str) -> tuple[httpx.Response, bytes | None]:
            query = _signed_query(settings.oa_token)
            envelope = crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
            query["msg_signature"] = ElementTree.fromstring(envelope).findtext("MsgSignature")
            query["encrypt_type"] = "aes"
            response = client.post("/wechat/callback", params=query, content=envelope.encode())
            if response.status_code != 200 or response.text == NO_REPLY:
                return response, response.content
            outer = ElementTree.fromstring(response.content)
            plain = crypto.decrypt_message(
                response.text,
                outer.findtext("MsgSignature"),
                outer.findtext("TimeStamp"),
                outer.findtext("Nonce"),
            )
            return response, plain.encode()

        # The sender encrypts text, so a lone surrogate cannot be written at all.
        _explore(send, content=CONTENT.filter(lambda c: "\ud800" not in c), examples=30)


def _problem(response: httpx.Response, reply: bytes | None, sender: str) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:200]}"
    if response.status_code == 400:
        return None if response.json()["error"]["code"] == "bad_request" else response.text
    if response.status_code != 200:
        return f"unexpected {response.status_code} {response.text[:200]}"
    if response.text == NO_REPLY:
        return None
    try:
        answer = ElementTree.fromstring(reply)
    except ElementTree.ParseError as exc:
        return f"reply is not well-formed XML ({exc}): {reply[:300]!r}"
    if answer.tag != "xml" or answer.findtext("ToUserName") != sender:
        return f"reply not addressed to {sender}: {reply[:300]!r}"
    if answer.findtext("FromUserName") != ACCOUNT or answer.findtext("MsgType") != "text":
        return f"reply is not a text reply from {ACCOUNT}: {reply[:300]!r}"
    if not (answer.findtext("Content") or "").strip():
        return f"reply has no content: {reply[:300]!r}"
    return None
