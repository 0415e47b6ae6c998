"""The one local-time helper and the one phone normaliser."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from backend.core.clock import (
    as_local,
    clock,
    local_midnight,
    local_text,
    local_today,
    to_local,
)
from backend.core.text import normalise_phone


def test_local_day_turns_at_local_midnight() -> None:
    clock.set(datetime(2026, 3, 1, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai
    assert local_today() == date(2026, 3, 1)
    clock.set(datetime(2026, 3, 1, 16, 0, tzinfo=UTC))
    assert local_today() == date(2026, 3, 2)
    assert local_midnight(date(2026, 3, 2)) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_times_read_as_people_type_and_read_them() -> None:
    moment = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
    assert to_local(moment).hour == 9
    assert local_text(moment) == "2026-05-04 09:30"
    assert local_text(date(2026, 5, 4), "%Y-%m-%d") == "2026-05-04"
    assert local_text(None) == ""
    assert as_local(datetime(2026, 5, 4, 9, 30)) == moment


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("12800138000", None),
        ("1380013800", None),
        ("", None),
        (None, None),
    ],
)
def test_one_phone_normaliser(typed: str | None, stored: str | None) -> None:
    assert normalise_phone(typed) == stored
