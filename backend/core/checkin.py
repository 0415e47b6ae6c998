"""Rotating check-in codes shown by staff as a QR code (activities, service posts).

A code is derived from the secret key, a subject (e.g. "activity:12") and the current
30-second window, so every app process computes the same code with no shared state, and a
photo of the screen stops working a minute later.

Six digits can be guessed by trying, so `verify_code_for` counts each person's attempts per
subject in the database and locks that person out after a few wrong ones.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from datetime import UTC, datetime

import segno

from backend.core import quota
from backend.core.clock import clock, local_text
from backend.core.config import get_settings
from backend.core.errors import Conflict, RateLimited
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


class CheckinCodeInvalid(Conflict):
    code = "checkin_code_invalid"
    message = "签到码不正确或已过期，请扫描现场最新的二维码"


class CheckinLocked(RateLimited):
    code = "checkin_locked"
    message = "签到码输错次数过多，请稍后再试"


# A warning about the coming lockout is shown once this few attempts are left.
WARN_WHEN_LEFT = 2


def _lockout_ends(now: datetime, seconds: int) -> datetime:
    # The end of the quota.window(seconds) that `now` falls in.
    return datetime.fromtimestamp((int(now.timestamp()) // seconds + 1) * seconds, UTC)


def _clock_time(moment: datetime) -> str:
    return local_text(moment, "%H:%M")


def _locked(now: datetime, until: datetime) -> CheckinLocked:
    wait = max(1, math.ceil((until - now).total_seconds()))
    return CheckinLocked(
        f"签到码输错次数过多，请于 {_clock_time(until)} 后再试",
        headers={"Retry-After": str(wait)},
    )


async def verify_code_for(*, subject: str, user_id: int, code: str) -> None:
    """Accept `user_id`'s code for `subject`, or raise CheckinCodeInvalid (counted) or, after
    `checkin_max_failures` wrong codes in the lockout window, CheckinLocked until it ends.

    Call it outside any transaction: the count must survive the failed request's rollback.
    """
    settings = get_settings()
    limit, seconds = settings.checkin_max_failures, settings.checkin_lockout_minutes * 60
    now = clock.now()
    key, bucket = f"checkin-fail:{subject}:{user_id}", quota.window(seconds, now)
    until = _lockout_ends(now, seconds)
    if await quota.used(key, bucket=bucket) >= limit:
        raise _locked(now, until)
    # Each attempt takes its count before the code is compared and a right code hands it
    # back, so of any burst from one person at most `limit` codes are ever compared.
    if not await quota.take(key, bucket=bucket, limit=limit):
        raise _locked(now, until)
    if verify_code(subject=subject, code=code):
        await quota.give_back(key, bucket=bucket)
        return
    left = limit - await quota.used(key, bucket=bucket)
    if left <= 0:
        raise CheckinCodeInvalid(f"签到码不正确，输错次数过多，请于 {_clock_time(until)} 后再试")
    if left <= WARN_WHEN_LEFT:
        raise CheckinCodeInvalid(
            f"{CheckinCodeInvalid.message}（再输错 {left} 次，将暂停签到至 {_clock_time(until)}）"
        )
    raise CheckinCodeInvalid()


def qr_svg(data: str, *, scale: int = 8) -> str:
    """An SVG QR code (inline-able in a page) for `data`."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="svg", scale=scale, border=2, xmldecl=False)
    return buffer.getvalue().decode()


def qr_png(data: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
