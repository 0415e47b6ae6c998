"""An injectable clock: services ask `clock.now()`, tests move time with `clock.set()`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


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

    def local(self, tz: str = "Asia/Shanghai") -> datetime:
        return self.now().astimezone(ZoneInfo(tz))


clock = Clock()
