"""`make run` as a newcomer meets it: `linli run` in an empty directory, nothing configured but the
WeChat host (a local fake, so nothing leaves this machine), serves the demo; prod refuses to
start with the development secret."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROD_ENV, free_port, wait_for_http
from tests.fakes.wechat_server import FakeWechat

# Each test starts `linli` as a process of its own.
pytestmark = pytest.mark.slow

START_TIMEOUT = 60


def fresh_env(**extra: str) -> dict[str, str]:
    """This environment without any LINLI_* setting, as on a machine that has never run Linli."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LINLI_")}
    return {**env, **extra}


@contextmanager
def linli_run(workdir: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    log_path = workdir / f"run-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "run", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(base + "/healthz", timeout=START_TIMEOUT, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{log_path.read_text()}") from exc
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log_path.read_text()


def test_linli_run_serves_the_demo_from_an_empty_directory(tmp_path: Path, fake_wechat: FakeWechat):
    env = fresh_env(
        LINLI_WECHAT_API_BASE=fake_wechat.base_url,
        LINLI_WECOM_WEBHOOK_BASE=fake_wechat.base_url,
    )
    with linli_run(tmp_path, env) as base:
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(base + "/readyz").status_code == 200

        communities = httpx.get(base + "/api/v1/communities").json()["items"]
        assert len(communities) >= 2
        assert all(c["slug"] and c["name"] for c in communities)

        home = httpx.get(base + "/h5/", follow_redirects=False)
        assert home.status_code in (200, 302, 303, 307), home.status_code
        if home.status_code != 200:
            assert "login" in home.headers["location"]
        assert (
            "text/html" in httpx.get(base + "/h5/", follow_redirects=True).headers["content-type"]
        )
        assert httpx.get(base + "/", follow_redirects=False).headers["location"] == "/h5/"

        assert httpx.get(base + "/docs").status_code == 200
        spec = httpx.get(base + "/openapi.json").json()
        assert "/api/v1/communities" in spec["paths"]

    # The default database is a file under ./var/ of the working directory.
    assert (tmp_path / "var" / "linli.sqlite3").is_file()

    # Running it again (migrations and demo data already there) serves the same demo.
    with linli_run(tmp_path, env) as base:
        again = httpx.get(base + "/api/v1/communities").json()["items"]
        assert again == communities


def test_prod_with_the_default_secret_refuses_to_start_with_a_clear_message(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=fresh_env(LINLI_ENV="prod"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LINLI_SECRET_KEY" in result.stderr
    assert "配置无效" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_linli_run_is_refused_in_prod(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "run", "--port", str(free_port())],
        cwd=tmp_path,
        env=fresh_env(**PROD_ENV, LINLI_SECRET_KEY="s" * 48),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "linli serve" in result.stdout + result.stderr
