"""TEST ONLY: the switches of the race tests' control cases.

Each concurrency test has a control case that runs the same burst with the guard taken away
(a read-check-write instead of the one guarded statement or unique key) and asserts that the
rule breaks, which shows the burst really races. The unguarded code lives in one module per
domain (`<domain>/unguarded.py`); the production code asks `enabled()` at one place. A switch
is honoured only with LINLI_ENV=dev, and the settings refuse to load with one set in prod.
"""

from __future__ import annotations

from typing import Literal

from backend.core.config import get_settings

# wishes: claim a wish · activities: book a seat · party: claim a service post ·
# points: redeem a reward.
Race = Literal["claim", "booking", "post_claim", "redeem"]
RACES: tuple[Race, ...] = ("claim", "booking", "post_claim", "redeem")


def enabled(race: Race) -> bool:
    """Whether this process runs `race` without its guard (LINLI_TEST_UNGUARDED_<RACE>)."""
    settings = get_settings()
    return settings.env == "dev" and bool(getattr(settings, f"test_unguarded_{race}"))
