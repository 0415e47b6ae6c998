"""The documented process-based deployment, for real: on PostgreSQL + Redis, `linli migrate`, then
`linli serve --workers 2` beside `linli bot`, the way compose and the systemd units run them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, run_linli

BOT_OBSERVATION_SECONDS = 3.0


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is `pid` (uvicorn's workers are children of the supervisor)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def worker_pids(pid: int) -> list[int]:
    workers = []
    for child in child_pids(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            workers.append(child)
    return workers


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)
def test_serve_with_two_workers_and_a_bot_on_postgres_and_redis(
    settings, live_server_factory, tmp_path: Path
):
    assert not settings.is_sqlite and settings.redis_url
    server = live_server_factory(workers=2)
    seeded = run_linli("seed-demo", env=server.env)
    assert seeded.returncode == 0, seeded.stderr

    bot_log = tmp_path / "bot.log"
    with open(bot_log, "w") as log:
        bot = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "bot"],
            cwd=ROOT,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert len(worker_pids(server.process.pid)) == 2

        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").status_code == 200
            # Enough requests that both workers answer some; all must see the same database.
            bodies = [http.get("/api/v1/communities").json() for _ in range(20)]
            assert bodies[0]["items"], "seed-demo made no communities"
            assert all(body == bodies[0] for body in bodies)
            echoed = http.get("/healthz", headers={"X-Request-Id": "deploy-check-1"})
            assert echoed.headers["x-request-id"] == "deploy-check-1"

        deadline = time.monotonic() + BOT_OBSERVATION_SECONDS
        while time.monotonic() < deadline:
            assert bot.poll() is None, f"linli bot exited: {bot_log.read_text()}"
            time.sleep(0.2)
    finally:
        bot.send_signal(signal.SIGINT)
        try:
            bot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()

    assert bot.returncode == 0, bot_log.read_text()

    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
