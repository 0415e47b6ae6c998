"""The race tests' unguarded switches never reach production, and count only in dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.core import unguarded
from backend.core.config import Settings, reset_settings
from tests.conftest import PROD_SETTINGS

STRONG = "x" * 40


@pytest.mark.parametrize("race", unguarded.RACES)
def test_each_switch_is_refused_in_prod(race: str, monkeypatch: pytest.MonkeyPatch) -> None:
    variable = f"LINLI_TEST_UNGUARDED_{race.upper()}"
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValidationError, match=variable):
        Settings(**PROD_SETTINGS, secret_key=STRONG, **{f"test_unguarded_{race}": True})
    assert not getattr(Settings(**PROD_SETTINGS, secret_key=STRONG), f"test_unguarded_{race}")


@pytest.mark.parametrize("race", unguarded.RACES)
def test_a_switch_set_in_the_environment_is_refused_in_prod(
    race: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control servers get the switch from their environment, as a deployment would.
    monkeypatch.setenv("LINLI_ENV", "prod")
    monkeypatch.setenv("LINLI_SECRET_KEY", STRONG)
    monkeypatch.setenv(f"LINLI_TEST_UNGUARDED_{race.upper()}", "1")
    with pytest.raises(ValidationError, match=f"LINLI_TEST_UNGUARDED_{race.upper()}"):
        Settings()


@pytest.mark.parametrize("race", unguarded.RACES)
def test_a_guard_is_dropped_only_when_its_switch_is_set_in_dev(
    race: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINLI_ENV", "dev")
    for other in unguarded.RACES:
        monkeypatch.delenv(f"LINLI_TEST_UNGUARDED_{other.upper()}", raising=False)
    reset_settings()
    try:
        assert not any(unguarded.enabled(r) for r in unguarded.RACES)
        monkeypatch.setenv(f"LINLI_TEST_UNGUARDED_{race.upper()}", "1")
        reset_settings()
        assert [r for r in unguarded.RACES if unguarded.enabled(r)] == [race]
    finally:
        reset_settings()
