"""Shared fixtures: a real database per test (SQLite always; PostgreSQL + Redis when
configured), the fake WeChat server, an async client and a multi-process live server.

PostgreSQL and Redis come from LINLI_TEST_DATABASE_URL / LINLI_TEST_REDIS_URL. On a
fresh machine without them those tests skip and say why; under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.core.clock import clock
from backend.core.config import Settings, reset_settings
from backend.core.db import close_db, init_db
from backend.core.redis import close_kv, init_kv
from tests.fakes.wechat_server import FakeWechat

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("LINLI_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LINLI_TEST_REDIS_URL")

# Real-looking values production accepts (a public https address, WeChat ids, secrets and
# token that are not the demo ones), for tests that run with LINLI_ENV=prod; each such test
# sets its own LINLI_SECRET_KEY.
PROD_SETTINGS = {
    "env": "prod",
    "public_base_url": "https://linli.shimenerlu.example.cn",
    "mp_appid": "wx5c8f0e2b7d41a936",
    "mp_secret": "3f9b2c7e1a6d48e0b5c2f7a9d1e3b6c8",
    "oa_appid": "wx9a1d3e6b2c7f4058",
    "oa_secret": "c7e2a9f4b1d6083e5a7c9b2f4d1e6a83",
    "oa_token": "Rk7mQ2vX9pLw4sTz",
}
PROD_ENV = {f"LINLI_{name.upper()}": value for name, value in PROD_SETTINGS.items()}


def require_service(url: str | None, name: str, variable: str) -> str:
    """Skip (fresh machine) or fail (CI) when a real service is not configured."""
    if url:
        return url
    message = f"{name} not configured: set {variable} to run this test"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services may not be skipped)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL: one database per pytest session, so parallel runs never collide ---


def _admin_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    url = require_service(PG_URL, "PostgreSQL", "LINLI_TEST_DATABASE_URL")
    import asyncpg

    name = f"linli_test_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(_admin_dsn(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + "/" + name
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service(REDIS_URL, "Redis", "LINLI_TEST_REDIS_URL")


# --- the fake WeChat server ---


@pytest.fixture(scope="session")
def fake_wechat_server() -> Iterator[FakeWechat]:
    server = FakeWechat().start()
    yield server
    server.stop()


@pytest.fixture
def fake_wechat(fake_wechat_server: FakeWechat) -> FakeWechat:
    fake_wechat_server.reset()
    return fake_wechat_server


# --- settings and database per test ---


def _backends() -> list:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Which stack a test runs on: SQLite + in-process, or PostgreSQL + Redis."""
    return request.param


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    fake_wechat: FakeWechat,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    env = {
        "LINLI_ENV": "dev",
        "LINLI_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "LINLI_WECHAT_API_BASE": fake_wechat.base_url,
        "LINLI_WECOM_WEBHOOK_BASE": fake_wechat.base_url,
        "LINLI_RATE_LIMITS": "off",
        "LINLI_LOG_LEVEL": "WARNING",
        "LINLI_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
    }
    if backend == "postgres":
        env["LINLI_DATABASE_URL"] = request.getfixturevalue("pg_database_url")
        env["LINLI_REDIS_URL"] = request.getfixturevalue("redis_url")
    else:
        env["LINLI_DATABASE_URL"] = f"sqlite://{tmp_path / 'linli.sqlite3'}"
        monkeypatch.delenv("LINLI_REDIS_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield Settings()
    reset_settings()


async def _reset_postgres_schema() -> None:
    conn = connections.get("default")
    await conn.execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[None]:
    """A connected, empty database with the current schema (and the key-value store)."""
    # Tortoise caches SQL per connection name, not per dialect; tests alternate dialects.
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    if not settings.is_sqlite:
        await _reset_postgres_schema()
    await Tortoise.generate_schemas()
    init_kv(settings)
    try:
        yield
    finally:
        await close_db()
        await close_kv()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


# One app per test process. FastAPI works out every route's dependencies on the first request
# an app serves (half a second for all of Linli's routes, paid again by each new app), and the
# app holds nothing of a test's own: settings, database and key-value store are read per
# request from what the `settings` and `db` fixtures set up.
_shared_app: list = []


@pytest.fixture
async def client(db: None, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from backend.core.logging import configure_logging
    from backend.main import create_app

    if not _shared_app:
        _shared_app.append(create_app(settings))
    configure_logging(settings.log_level)
    app = _shared_app[0]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# --- a real multi-process server (`linli serve --workers N`) ---


class LiveServer:
    def __init__(self, base_url: str, process: subprocess.Popen, env: dict[str, str]) -> None:
        self.base_url = base_url
        self.process = process
        self.env = env


def linli_env(**extra: str) -> dict[str, str]:
    """The environment for a `linli` subprocess: this test's LINLI_* settings plus `extra`."""
    return {**os.environ, **extra}


def reset_postgres(url: str) -> None:
    """Empty a test database so `linli migrate` starts from nothing."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_admin_dsn(url))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(run())


def run_linli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_http(
    url: str, *, timeout: float = 30, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def live_server_factory(settings: Settings, tmp_path: Path):
    """Start `linli serve --workers N` on the test's database; migrations applied first."""
    started: list[subprocess.Popen] = []

    def start(*, workers: int = 2, **extra_env: str) -> LiveServer:
        env = linli_env(**extra_env)
        if not settings.is_sqlite and not started:
            reset_postgres(settings.database_url)
        migrated = run_linli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        log = open(tmp_path / f"server-{port}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backend.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/readyz", process=process)
        return LiveServer(base, process, env)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# --- running in parallel (pytest-xdist) ---

# Tests that start a multi-process server of their own (`linli serve --workers N`).
SUBPROCESS_FIXTURES = {"live_server_factory"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Multi-process tests are `slow` (left out of `make test-fast`) and share one xdist
    group, so two multi-process servers never burst against each other on a 2-core box: a
    race test's timing then depends on the test, not on what the other worker is doing."""
    for item in items:
        if SUBPROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("live-server"))
