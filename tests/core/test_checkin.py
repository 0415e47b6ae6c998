from datetime import UTC, datetime, timedelta

from backend.core.checkin import current_code, qr_png, qr_svg, verify_code
from backend.core.clock import clock


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
