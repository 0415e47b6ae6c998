"""An injectable clock and the street's local time.

Services ask `clock.now()` (always UTC), tests move time with `clock.set()`. Everything a
person reads or a local day decides (quotas, reports, "today") goes through the local-time
helpers below, so the street's time zone (`LINLI_TIMEZONE`) is read in one place.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from backend.core.config import get_settings


class Clock:
    def __init__(self) -> None:
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        """Freeze time at `moment` (aware)."""
        if moment.tzinfo is None:
            raise ValueError("clock.set needs an aware datetime")
        # Always UTC: SQLite compares stored datetimes as text, so one offset everywhere.
        self._frozen = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta

    def reset(self) -> None:
        self._frozen = None
        self._offset = timedelta()


clock = Clock()


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_zone() -> ZoneInfo:
    """The street's time zone (Asia/Shanghai unless configured otherwise)."""
    return _zone(get_settings().timezone)


def to_local(moment: datetime) -> datetime:
    """An aware instant in the street's local time."""
    return moment.astimezone(local_zone())


def local_now() -> datetime:
    return to_local(clock.now())


def local_today() -> date:
    return local_now().date()


def local_midnight(day: date) -> datetime:
    """The UTC instant at which local `day` begins."""
    return datetime.combine(day, time(0), tzinfo=local_zone()).astimezone(UTC)


def as_local(naive: datetime) -> datetime:
    """A wall-clock time typed in the street (naive) as an aware UTC instant; aware values
    are only converted."""
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=local_zone())
    return naive.astimezone(UTC)


def local_text(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time as people read it: local, in the one date format; dates pass through."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value)
    return value.strftime(fmt)
