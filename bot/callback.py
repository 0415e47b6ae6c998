"""The official account's server endpoint (GET verification, POST messages and events).

wechatpy's own checks compare signatures with `!=` and ignore the timestamp and the
nonce, so every request is checked here first: a constant-time signature comparison,
a ±300 s timestamp window and a nonce that may be used once. Only then is anything
decrypted, parsed or answered.
"""

from __future__ import annotations

import re
import secrets
import struct
from collections.abc import Mapping
from xml.parsers.expat import ExpatError

import xmltodict
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatException
from wechatpy.messages import BaseMessage
from wechatpy.utils import WeChatSigner

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import DomainError, Forbidden, ServiceUnavailable
from backend.core.redis import get_kv
from backend.core.security import constant_time_equals
from bot.replies import answer_message

MAX_BODY_BYTES = 64 * 1024
TIMESTAMP_WINDOW_SECONDS = 300
# Longer than the whole window on both sides, so a nonce is remembered while it could be valid.
NONCE_TTL_SECONDS = 2 * TIMESTAMP_WINDOW_SECONDS

_NONCE = re.compile(r"[A-Za-z0-9]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# openids and original ids (gh_...) are this shape; wechatpy writes them into the reply
# inside CDATA without escaping, so anything else must not get that far.
_WECHAT_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")

# WeChat treats "success" (or an empty body) as "received, no reply".
NO_REPLY = "success"

router = APIRouter(prefix="/wechat", tags=["wechat"], include_in_schema=False)


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"
    message = "请求格式不正确"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "too_large"
    message = "提交的内容太大"


@router.get("/callback")
async def verify_server(request: Request) -> PlainTextResponse:
    """WeChat's server check: echo `echostr` when the request is signed with our token."""
    params = request.query_params
    echostr = params.get("echostr")
    await _authenticate(params, signature_param="signature", extra=())
    if not echostr:
        raise BadRequest("缺少 echostr 参数")
    return PlainTextResponse(echostr)


@router.post("/callback")
async def receive_message(request: Request) -> Response:
    """One message or event from WeChat, answered in the same mode (plain or AES) it came in."""
    settings = get_settings()
    params = request.query_params
    encrypt_type = params.get("encrypt_type") or "raw"
    if encrypt_type not in ("raw", "aes"):
        raise BadRequest("不支持的加密方式")
    text = await _read_body(request)

    if encrypt_type == "raw":
        # In safe mode the plain signature does not cover the body, so plain messages are refused.
        if settings.oa_aes_key:
            raise Forbidden("公众号已启用安全模式，请发送加密消息")
        await _authenticate(params, signature_param="signature", extra=())
        message = _parse_message(text)
        reply = await answer_message(message)
        if reply is None:
            return PlainTextResponse(NO_REPLY)
        return Response(reply.render(), media_type="application/xml")

    if not settings.oa_aes_key:
        raise Forbidden("公众号未启用安全模式")
    envelope = _parse_envelope(text)
    await _authenticate(params, signature_param="msg_signature", extra=(envelope["Encrypt"],))
    crypto = WeChatCrypto(settings.oa_token, settings.oa_aes_key, settings.oa_appid)
    message = _parse_message(_decrypt(crypto, envelope, params))
    reply = await answer_message(message)
    if reply is None:
        return PlainTextResponse(NO_REPLY)
    encrypted = crypto.encrypt_message(
        reply.render(),
        nonce=str(secrets.randbelow(10**10)),
        timestamp=str(int(clock.now().timestamp())),
    )
    return Response(encrypted, media_type="application/xml")


async def _authenticate(
    params: Mapping[str, str], *, signature_param: str, extra: tuple[str, ...]
) -> None:
    """Refuse unless signed with our token, within the time window, and with a fresh nonce."""
    signature = params.get(signature_param) or ""
    timestamp = params.get("timestamp") or ""
    nonce = params.get("nonce") or ""
    if not (_TIMESTAMP.fullmatch(timestamp) and _NONCE.fullmatch(nonce) and signature):
        raise Forbidden("签名参数缺失或格式不正确")
    signer = WeChatSigner()
    signer.add_data(get_settings().oa_token, timestamp, nonce, *extra)
    if not constant_time_equals(signer.signature, signature):
        raise Forbidden("签名校验失败")
    if abs(clock.now().timestamp() - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
        raise Forbidden("请求已过期，请检查服务器时间")
    try:
        fresh = await get_kv().set(f"wxnonce:{nonce}", "1", ttl=NONCE_TTL_SECONDS, nx=True)
    except Exception as exc:
        # Without the nonce store a replay cannot be ruled out: refuse, WeChat retries.
        raise ServiceUnavailable() from exc
    if not fresh:
        raise Forbidden("重复的请求")


async def _read_body(request: Request) -> str:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("消息不是 UTF-8 编码") from exc


def _parse_envelope(text: str) -> dict[str, str]:
    """The outer XML of a safe-mode message: it must carry the `Encrypt` payload."""
    try:
        root = xmltodict.parse(text).get("xml")
    except (ExpatError, ValueError) as exc:
        raise BadRequest("XML 格式不正确") from exc
    if not isinstance(root, dict) or not isinstance(root.get("Encrypt"), str):
        raise BadRequest("缺少加密内容")
    return {"Encrypt": root["Encrypt"]}


def _decrypt(crypto: WeChatCrypto, envelope: dict[str, str], params: Mapping[str, str]) -> str:
    try:
        return crypto.decrypt_message(
            envelope, params["msg_signature"], params["timestamp"], params["nonce"]
        )
    except (WeChatException, ValueError, IndexError, struct.error) as exc:
        raise BadRequest("消息无法解密") from exc


def _parse_message(text: str) -> BaseMessage:
    # wechatpy indexes the parsed XML without checking its shape: every failure is bad input.
    try:
        message = parse_message(text)
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest("XML 格式不正确") from exc
    if message is None:
        raise BadRequest("消息为空")
    for value in (message.source, message.target):
        if not (isinstance(value, str) and _WECHAT_ID.fullmatch(value)):
            raise BadRequest("消息缺少发送方或接收方")
    return message
