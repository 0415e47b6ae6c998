"""Party settings' defaults (the unguarded switch: tests/core/test_unguarded.py)."""

from __future__ import annotations

from backend.core.config import Settings


def test_party_settings_have_sane_defaults() -> None:
    settings = Settings()
    assert settings.party_daily_minutes_cap == 480
    assert settings.party_session_max_minutes == 720
    assert "环境绿化" in settings.party_skills
