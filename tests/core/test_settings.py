import pytest
from pydantic import ValidationError

from backend.core.config import DEFAULT_SECRET, Settings


def test_prod_refuses_default_secret(monkeypatch):
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="LINLI_SECRET_KEY"):
        Settings(env="prod", secret_key=DEFAULT_SECRET)


def test_prod_refuses_short_secret():
    with pytest.raises(ValidationError, match="32"):
        Settings(env="prod", secret_key="short-but-not-default")


def test_prod_accepts_long_random_secret():
    assert Settings(env="prod", secret_key="x" * 40).env == "prod"


def test_dev_defaults_to_embedded_sqlite_without_redis(monkeypatch):
    for key in ("LINLI_DATABASE_URL", "LINLI_REDIS_URL", "LINLI_ENV"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings(_env_file=None)
    assert settings.is_sqlite and settings.database_url.endswith("var/linli.sqlite3")
    assert settings.redis_url is None
    assert settings.rate_limits_enabled


def test_rate_limit_switch_is_validated():
    assert Settings(rate_limits="OFF").rate_limits_enabled is False
    with pytest.raises(ValidationError):
        Settings(rate_limits="maybe")


def test_aes_key_must_be_wechat_shaped():
    assert Settings(oa_aes_key="").oa_aes_key is None
    assert Settings(oa_aes_key="k" * 43).oa_aes_key == "k" * 43
    with pytest.raises(ValidationError, match="43"):
        Settings(oa_aes_key="too-short")
