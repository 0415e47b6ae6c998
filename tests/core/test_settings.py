import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from backend.core.config import DEFAULT_SECRET, Settings
from tests.conftest import PROD_ENV, PROD_SETTINGS, ROOT

STRONG = "x" * 40


def prod(**changes):
    return Settings(_env_file=None, **{**PROD_SETTINGS, "secret_key": STRONG, **changes})


def test_prod_refuses_default_secret(monkeypatch):
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="LINLI_SECRET_KEY"):
        prod(secret_key=DEFAULT_SECRET)


def test_prod_refuses_short_secret():
    with pytest.raises(ValidationError, match="32"):
        prod(secret_key="short-but-not-default")


def test_prod_accepts_long_random_secret_and_real_wechat_values():
    settings = prod()
    assert settings.env == "prod"
    assert settings.public_base_url.startswith("https://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("oa_token", ""),
        ("oa_token", "linli-oa-token"),
        ("mp_appid", "wx_mp_demo"),
        ("mp_appid", ""),
        ("mp_secret", "mp-demo-secret"),
        ("oa_appid", "wx_oa_demo"),
        ("oa_secret", "oa-demo-secret"),
        ("oa_secret", ""),
        ("public_base_url", "http://127.0.0.1:8000"),
        ("public_base_url", "https://localhost"),
        ("public_base_url", "https://127.0.0.1"),
        ("public_base_url", "http://linli.example.cn"),
        ("public_base_url", "not a url"),
    ],
)
def test_prod_refuses_demo_or_unsafe_values_naming_the_variable(variable, value):
    with pytest.raises(ValidationError) as caught:
        prod(**{variable: value})
    message = str(caught.value)
    assert f"LINLI_{variable.upper()}" in message
    # Only the bad value is named: the other settings are fine.
    others = {f"LINLI_{n.upper()}" for n in PROD_SETTINGS if n not in ("env", variable)}
    assert not any(other in message for other in others | {"LINLI_SECRET_KEY"})


def test_dev_keeps_the_demo_values():
    settings = Settings(_env_file=None, env="dev")
    assert (settings.mp_appid, settings.oa_token) == ("wx_mp_demo", "linli-oa-token")


@pytest.mark.slow
def test_every_command_exits_2_naming_each_unsafe_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    env.update(PROD_ENV, LINLI_SECRET_KEY=STRONG, LINLI_OA_TOKEN="linli-oa-token")
    env["LINLI_PUBLIC_BASE_URL"] = "http://localhost:8000"
    for command in ("migrate", "serve", "bot"):
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", command],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, command
        assert "LINLI_OA_TOKEN" in result.stderr and "LINLI_PUBLIC_BASE_URL" in result.stderr
        assert "LINLI_MP_APPID" not in result.stderr
        assert "Traceback" not in result.stderr


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
