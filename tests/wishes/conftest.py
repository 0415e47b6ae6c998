"""Wish tests run in the neighbourhood (tests.factories.make_neighbourhood): two communities
of one street, a unit, and one person of every kind."""

from __future__ import annotations

import pytest

from tests.factories import Neighbourhood, make_neighbourhood

# Room for tests that post and claim many wishes with one person; the caps' own tests set
# the real limits back (see tight_caps in test_trust.py).
ROOMY_CAPS = {
    "LINLI_WISHES_PER_DAY": "100",
    "LINLI_WISH_CLAIMS_PER_DAY": "100",
    "LINLI_BOARD_ITEMS_PER_DAY": "1000",
}


@pytest.fixture(autouse=True)
def roomy_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse runs before the settings fixture, which reads the environment afresh.
    for key, value in ROOMY_CAPS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def hood(db: None) -> Neighbourhood:
    return await make_neighbourhood()
