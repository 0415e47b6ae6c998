"""The test-only unguarded claim switch never reaches production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.core.config import Settings

STRONG = "x" * 40


def test_the_unguarded_claim_switch_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINLI_TEST_UNGUARDED_POST_CLAIM", raising=False)
    with pytest.raises(ValidationError, match="LINLI_TEST_UNGUARDED_POST_CLAIM"):
        Settings(env="prod", secret_key=STRONG, test_unguarded_post_claim=True)
    assert not Settings(env="prod", secret_key=STRONG).test_unguarded_post_claim


def test_party_settings_have_sane_defaults() -> None:
    settings = Settings()
    assert settings.party_daily_minutes_cap == 480
    assert settings.party_session_max_minutes == 720
    assert "环境绿化" in settings.party_skills
