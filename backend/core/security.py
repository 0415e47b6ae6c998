"""Signed tokens, field encryption and masking (PIPL: collect little, show less)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeSerializer

from backend.core.clock import clock
from backend.core.config import get_settings


def _derive(purpose: str) -> bytes:
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt=salt)


def sign_token(payload: dict[str, Any], *, ttl_seconds: int, salt: str) -> str:
    """Sign `payload` with an expiry taken from the injectable clock."""
    exp = int(clock.now().timestamp()) + ttl_seconds
    return _serializer(salt).dumps({**payload, "exp": exp})


def verify_token(token: str, *, salt: str) -> dict[str, Any] | None:
    """Return the payload, or None when the token is forged, malformed or expired."""
    try:
        data = _serializer(salt).loads(token)
    except (BadSignature, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
        return None
    if data["exp"] <= int(clock.now().timestamp()):
        return None
    return data


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive("field-encryption")))


def encrypt_field(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt_field(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return _fernet().decrypt(value.encode()).decode()
    except InvalidToken:
        return None


def blind_index(value: str) -> str:
    """Keyed hash so an encrypted value can still be looked up and kept unique."""
    return hmac.new(_derive("blind-index"), value.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def mask_name(name: str | None) -> str:
    if not name:
        return "**"
    return name[0] + "**"


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def random_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
