"""`linli serve --workers 2` with the demo data, shared by many tests, per backend.

The contract tests send thousands of requests; starting a server per test would cost more
than the requests, so one stack serves all of tests/contract (see its conftest.py) and a
module elsewhere imports `stack` for a stack of its own. The seed of the varied runs is
chosen once per test run and printed, and LINLI_FUZZ_SEED replays it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.core.config import Settings, reset_settings
from tests.conftest import (
    ROOT,
    _backends,
    free_port,
    linli_env,
    reset_postgres,
    run_linli,
    wait_for_http,
)
from tests.seeding import open_database

SEED = int(os.environ.get("LINLI_FUZZ_SEED") or secrets.randbelow(2**32))
# Personas the API is explored as (None: anonymous), demo personas of `linli seed-demo`.
PERSONAS = ("resident", "staff", "street_admin", None)


def replay_hint() -> str:
    return f"replay with LINLI_FUZZ_SEED={SEED}"


@dataclass
class Stack:
    backend: str
    base_url: str
    settings: Settings
    tokens: dict[str, str]

    def bearer(self, persona: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[persona]}"} if persona else {}

    def keep_signed_in(self) -> None:
        """New tokens for the personas an operation just logged out (logout, a role revoke
        raise the token version), so later operations are still explored signed in."""
        for persona in self.tokens:
            me = httpx.get(self.base_url + "/api/v1/me", headers=self.bearer(persona), timeout=30)
            if me.status_code == 401:
                self.tokens.update(asyncio.run(_persona_tokens(self.settings)))
                return


async def _persona_tokens(settings: Settings) -> dict[str, str]:
    from backend.accounts.models import User
    from backend.accounts.service import issue_access_token

    async with open_database(settings):
        users = await User.filter(persona__isnull=False)
        return {
            u.persona: issue_access_token(user_id=u.id, token_version=u.token_version)
            for u in users
        }


def _environment(request: pytest.FixtureRequest, backend: str, tmp: Path) -> dict[str, str]:
    env = {
        "LINLI_ENV": "dev",
        "LINLI_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "LINLI_RATE_LIMITS": "off",
        "LINLI_LOG_LEVEL": "WARNING",
        "LINLI_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
    }
    fake = request.getfixturevalue("fake_wechat_server")
    env["LINLI_WECHAT_API_BASE"] = fake.base_url
    env["LINLI_WECOM_WEBHOOK_BASE"] = fake.base_url
    if backend == "postgres":
        env["LINLI_DATABASE_URL"] = request.getfixturevalue("pg_database_url")
        env["LINLI_REDIS_URL"] = request.getfixturevalue("redis_url")
    else:
        env["LINLI_DATABASE_URL"] = f"sqlite://{tmp / 'linli.sqlite3'}"
    return env


def serve_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The demo street served by two workers, on SQLite or on PostgreSQL + Redis."""
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"stack-{backend}")
    print(f"\ncontract fuzz seed {SEED} ({replay_hint()})")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _environment(request, backend, tmp).items():
            mp.setenv(key, value)
        if backend == "sqlite":
            mp.delenv("LINLI_REDIS_URL", raising=False)
        reset_settings()
        settings = Settings()
        env = linli_env()
        if backend == "postgres":
            reset_postgres(settings.database_url)
        migrated = run_linli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        with open(tmp / "server.log", "w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "backend.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    "2",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            # The workers start while the seed runs: they read nothing before a request.
            seeded = run_linli("seed-demo", env=env)
            assert seeded.returncode == 0, seeded.stderr
            wait_for_http(base_url + "/readyz", process=process)
            tokens = asyncio.run(_persona_tokens(settings))
            yield Stack(backend, base_url, settings, tokens)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    reset_settings()


stack = pytest.fixture(scope="module", params=_backends(), name="stack")(serve_demo)


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client
