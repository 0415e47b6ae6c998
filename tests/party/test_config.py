"""The test-only unguarded claim switch never reaches production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.core.config import Settings, reset_settings
from backend.party import service
from tests.conftest import PROD_SETTINGS

STRONG = "x" * 40


def test_the_unguarded_claim_switch_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINLI_TEST_UNGUARDED_POST_CLAIM", raising=False)
    with pytest.raises(ValidationError, match="LINLI_TEST_UNGUARDED_POST_CLAIM"):
        Settings(**PROD_SETTINGS, secret_key=STRONG, test_unguarded_post_claim=True)
    assert not Settings(**PROD_SETTINGS, secret_key=STRONG).test_unguarded_post_claim


def test_party_settings_have_sane_defaults() -> None:
    settings = Settings()
    assert settings.party_daily_minutes_cap == 480
    assert settings.party_session_max_minutes == 720
    assert "环境绿化" in settings.party_skills


def test_the_switch_set_in_the_environment_is_refused_in_prod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The control servers get the switch from their environment, as a deployment would.
    monkeypatch.setenv("LINLI_ENV", "prod")
    monkeypatch.setenv("LINLI_SECRET_KEY", STRONG)
    monkeypatch.setenv("LINLI_TEST_UNGUARDED_POST_CLAIM", "1")
    with pytest.raises(ValidationError, match="LINLI_TEST_UNGUARDED_POST_CLAIM"):
        Settings()


def test_the_claim_guards_are_dropped_only_when_the_switch_is_set_in_dev(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINLI_ENV", "dev")
    monkeypatch.delenv("LINLI_TEST_UNGUARDED_POST_CLAIM", raising=False)
    reset_settings()
    try:
        assert not service._unguarded_claims()
        monkeypatch.setenv("LINLI_TEST_UNGUARDED_POST_CLAIM", "1")
        reset_settings()
        assert service._unguarded_claims()
    finally:
        reset_settings()
