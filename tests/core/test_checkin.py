import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backend.core.checkin import (
    CheckinCodeInvalid,
    CheckinLocked,
    current_code,
    qr_png,
    qr_svg,
    verify_code,
    verify_code_for,
)
from backend.core.clock import clock
from backend.core.config import reset_settings
from backend.core.models import UsageCounter


def test_code_rotates_every_30_seconds_with_grace(settings):
    clock.set(datetime(2026, 11, 22, 4, 0, 0, tzinfo=UTC))
    code, expires_at = current_code(subject="activity:1")
    assert len(code) == 6 and code.isdigit()
    assert expires_at == datetime(2026, 11, 22, 4, 0, 30, tzinfo=UTC)
    assert verify_code(subject="activity:1", code=code)
    assert not verify_code(subject="activity:2", code=code)
    clock.advance(timedelta(seconds=30))
    assert verify_code(subject="activity:1", code=code)  # one window of grace
    clock.advance(timedelta(seconds=30))
    assert not verify_code(subject="activity:1", code=code)


def test_garbage_codes_are_refused(settings):
    for bad in ("", "12345", "1234567", "abcdef", " 12 34 ", "１２３４５６"):
        assert not verify_code(subject="activity:1", code=bad)


def test_qr_renders(settings):
    assert qr_svg("LINLI:123456").startswith("<svg")
    assert qr_png("LINLI:123456")[:4] == b"\x89PNG"


# --- lockout after wrong codes (counted in the database) ---

# 04:00 UTC (12:00 in Shanghai) starts a 15-minute window, which ends at 12:15 local.
WINDOW_START = datetime(2026, 11, 22, 4, 0, 0, tzinfo=UTC)


def _wrong(subject: str) -> str:
    return "000000" if current_code(subject=subject)[0] != "000000" else "111111"


async def _failures(subject: str, user_id: int) -> int:
    rows = await UsageCounter.filter(key=f"checkin-fail:{subject}:{user_id}").values_list(
        "count", flat=True
    )
    return sum(rows)


async def test_five_wrong_codes_lock_that_person_out_of_that_subject_until_the_window_ends(db):
    clock.set(WINDOW_START + timedelta(seconds=10))
    subject = "activity:7"
    messages = []
    for _ in range(5):
        with pytest.raises(CheckinCodeInvalid) as wrong:
            await verify_code_for(subject=subject, user_id=1, code=_wrong(subject))
        messages.append(wrong.value.message)
    assert await _failures(subject, 1) == 5
    assert "再输错" not in messages[0] and "再输错 2 次" in messages[2]
    assert "再输错 1 次" in messages[3] and "12:15 后再试" in messages[4]

    # The right code is refused too, for the rest of the window, and not counted again.
    with pytest.raises(CheckinLocked) as locked:
        await verify_code_for(subject=subject, user_id=1, code=current_code(subject=subject)[0])
    assert (locked.value.status_code, locked.value.code) == (429, "checkin_locked")
    assert "12:15 后再试" in locked.value.message
    assert locked.value.headers == {"Retry-After": str(900 - 10)}
    assert await _failures(subject, 1) == 5

    # Another person, and the same person elsewhere, are not locked.
    await verify_code_for(subject=subject, user_id=2, code=current_code(subject=subject)[0])
    await verify_code_for(subject="post:7", user_id=1, code=current_code(subject="post:7")[0])

    clock.set(WINDOW_START + timedelta(minutes=15))
    await verify_code_for(subject=subject, user_id=1, code=current_code(subject=subject)[0])


async def test_right_codes_do_not_count_towards_the_lockout(db):
    clock.set(WINDOW_START)
    subject = "post:3"
    for _ in range(4):
        with pytest.raises(CheckinCodeInvalid):
            await verify_code_for(subject=subject, user_id=1, code=_wrong(subject))
    for _ in range(10):
        await verify_code_for(subject=subject, user_id=1, code=current_code(subject=subject)[0])
    assert await _failures(subject, 1) == 4


async def test_the_limit_and_window_come_from_the_settings(db, monkeypatch):
    monkeypatch.setenv("LINLI_CHECKIN_MAX_FAILURES", "2")
    monkeypatch.setenv("LINLI_CHECKIN_LOCKOUT_MINUTES", "60")
    reset_settings()
    clock.set(WINDOW_START)
    subject = "activity:9"
    for _ in range(2):
        with pytest.raises(CheckinCodeInvalid):
            await verify_code_for(subject=subject, user_id=5, code=_wrong(subject))
    clock.set(WINDOW_START + timedelta(minutes=59))
    with pytest.raises(CheckinLocked) as locked:
        await verify_code_for(subject=subject, user_id=5, code=current_code(subject=subject)[0])
    assert "13:00 后再试" in locked.value.message
    clock.set(WINDOW_START + timedelta(minutes=60))
    await verify_code_for(subject=subject, user_id=5, code=current_code(subject=subject)[0])


async def test_a_burst_of_wrong_codes_compares_at_most_the_limit(db):
    clock.set(WINDOW_START)
    subject = "activity:11"
    outcomes = await asyncio.gather(
        *(verify_code_for(subject=subject, user_id=1, code=_wrong(subject)) for _ in range(20)),
        return_exceptions=True,
    )
    codes = sorted(getattr(o, "code", repr(o)) for o in outcomes)
    assert codes == ["checkin_code_invalid"] * 5 + ["checkin_locked"] * 15
    assert await _failures(subject, 1) == 5
