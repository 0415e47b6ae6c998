from datetime import timedelta

from backend.core.clock import clock
from backend.core.security import (
    blind_index,
    decrypt_field,
    encrypt_field,
    mask_name,
    mask_phone,
    sign_token,
    verify_token,
)


def test_token_round_trip_and_expiry(settings):
    token = sign_token({"uid": 7}, ttl_seconds=60, salt="access")
    assert verify_token(token, salt="access")["uid"] == 7
    assert verify_token(token, salt="session") is None
    clock.advance(timedelta(seconds=61))
    assert verify_token(token, salt="access") is None


def test_forged_and_garbage_tokens_are_refused(settings):
    token = sign_token({"uid": 7}, ttl_seconds=60, salt="access")
    payload, _, signature = token.rpartition(".")
    assert verify_token(payload + "." + signature[::-1], salt="access") is None
    for garbage in ("", ".", "a.b.c", "😀", "x" * 5000):
        assert verify_token(garbage, salt="access") is None


def test_field_encryption_and_blind_index(settings):
    secret = encrypt_field("13812341234")
    assert "1381234" not in secret
    assert decrypt_field(secret) == "13812341234"
    assert decrypt_field("not-a-token") is None
    assert blind_index("13812341234") == blind_index("13812341234")
    assert blind_index("13812341234") != blind_index("13812341235")


def test_masking():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone(None) is None
    assert mask_name("张三丰") == "张**"
    assert mask_name("") == "**"
