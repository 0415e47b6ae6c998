"""Rotating check-in codes shown by staff as a QR code (activities, service posts).

A code is derived from the secret key, a subject (e.g. "activity:12") and the current
30-second window, so every app process computes the same code with no shared state, and a
photo of the screen stops working a minute later.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import UTC, datetime

import segno

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.security import constant_time_equals

PERIOD_SECONDS = 30
CODE_DIGITS = 6


def _window(moment: datetime, period: int) -> int:
    return int(moment.timestamp()) // period


def _code_for(subject: str, window: int) -> str:
    key = hmac.new(get_settings().secret_key.encode(), b"checkin-code", hashlib.sha256).digest()
    digest = hmac.new(key, f"{subject}:{window}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def current_code(*, subject: str, period_seconds: int = PERIOD_SECONDS) -> tuple[str, datetime]:
    """The code valid now for `subject` and when it rotates."""
    window = _window(clock.now(), period_seconds)
    expires_at = datetime.fromtimestamp((window + 1) * period_seconds, UTC)
    return _code_for(subject, window), expires_at


def verify_code(
    *, subject: str, code: str, period_seconds: int = PERIOD_SECONDS, grace_windows: int = 1
) -> bool:
    """True when `code` is the current code or one of the last `grace_windows` codes.

    The grace covers a code read just before it rotated and typed in a few seconds later.
    """
    code = (code or "").strip()
    if len(code) != CODE_DIGITS or not code.isdigit():
        return False
    window = _window(clock.now(), period_seconds)
    # Compare against every candidate so the time taken does not say which one matched.
    matches = [
        constant_time_equals(_code_for(subject, window - back), code)
        for back in range(grace_windows + 1)
    ]
    return any(matches)


def qr_svg(data: str, *, scale: int = 8) -> str:
    """An SVG QR code (inline-able in a page) for `data`."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="svg", scale=scale, border=2, xmldecl=False)
    return buffer.getvalue().decode()


def qr_png(data: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
