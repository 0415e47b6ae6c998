"""Redis down is only slower: `python -m tests.bench.redis_down` (not part of the pass/fail suite).

`linli serve --workers 2` on PostgreSQL (LINLI_TEST_DATABASE_URL, a fresh database of its
own), twice in one run: with LINLI_REDIS_URL at the real Redis (LINLI_TEST_REDIS_URL), the
baseline, then at a black hole (tests/fakes/blackhole.py: accepts connections, never
answers). Rate limits are on (with limits no request reaches), so every request asks Redis
for its per-IP and per-user counts. Measures `GET /api/v1/me` at 16 connections: req/s,
p50 and p99, the black-hole run relative to the baseline, and the client's own CPU time
(a lean keep-alive client, so the client does not eat the server's two cores).

    python -m tests.bench.redis_down [--duration 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.bench.bench_api import ROOT, bench_database, child_env, free_port, linli
from tests.bench.booking_burst import Result, Server, measure, request_bytes, stop_server
from tests.fakes.blackhole import BlackHole

MAX_DURATION = 20.0
USERS = 64
# The black-hole run should keep at least this share of the baseline's throughput.
TARGET_RATIO = 0.5


@dataclass
class Run:
    label: str
    result: Result
    client_cpu_seconds: float


async def make_tokens(env: dict[str, str]) -> list[str]:
    """Users created directly in the database, and their bearer tokens."""
    os.environ.update(env)
    from backend.accounts import service as accounts_service
    from backend.accounts.models import User
    from backend.core.config import get_settings, reset_settings
    from backend.core.db import close_db, init_db

    reset_settings()
    await init_db(get_settings())
    try:
        await User.bulk_create([User(nickname=f"压测{i}") for i in range(USERS)])
        ids = await User.all().order_by("id").values_list("id", flat=True)
    finally:
        await close_db()
    return [accounts_service.issue_access_token(user_id=i) for i in ids]


def start(env: dict[str, str], log: Path, token: str) -> Server:
    """`linli serve --workers 2`, ready when `/api/v1/me` answers (/readyz says 503 while
    Redis is down, which is the point)."""
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            me = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/me",
                headers={"Authorization": f"Bearer {token}"},
                timeout=2,
            )
            if me.status_code == 200:
                return Server(port, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server not ready after 60 s:\n{log.read_text()}")


async def run_me(label: str, port: int, tokens: list[str], connections: int, duration: float):
    requests = itertools.cycle(
        [request_bytes("GET", "/api/v1/me", port, token) for token in tokens]
    )
    cpu = time.process_time()
    result = await measure(label, port, connections, duration, lambda: next(requests))
    return Run(label, result, time.process_time() - cpu)


def report(runs: list[Run], hole: BlackHole) -> bool:
    baseline = runs[0].result
    print("\nLinli with Redis down — GET /api/v1/me, PostgreSQL, linli serve --workers 2")
    print(
        f"{'redis':<22}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs real':>9}"
        f"{'client CPU s':>14}{'µs/req':>8}  statuses"
    )
    for run in runs:
        r = run.result
        per_request = run.client_cpu_seconds / max(1, len(r.latencies)) * 1e6
        print(
            f"{run.label:<22}{r.connections:>6}{r.rate:>9.0f}{r.percentile(0.5):>9.1f}"
            f"{r.percentile(0.99):>9.1f}{r.rate / baseline.rate:>8.0%}"
            f"{run.client_cpu_seconds:>14.2f}{per_request:>8.0f}  {dict(r.statuses)}"
        )
    down = runs[1].result
    print(f"\nconnections the black hole accepted: {hole.accepted}")
    ratio = down.rate / baseline.rate
    met = ratio >= TARGET_RATIO
    print(f"  [{'met' if met else 'NOT met'}] Redis down keeps ≥ {TARGET_RATIO:.0%}: {ratio:.0%}")
    return all(set(run.result.statuses) == {200} for run in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (≤ 20)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    duration = min(args.duration, MAX_DURATION)
    if not (os.environ.get("LINLI_TEST_DATABASE_URL") and os.environ.get("LINLI_TEST_REDIS_URL")):
        raise SystemExit(
            "set LINLI_TEST_DATABASE_URL and LINLI_TEST_REDIS_URL (PostgreSQL + Redis)"
        )

    with (
        tempfile.TemporaryDirectory(prefix="linli-redis-down-bench-") as tmp_name,
        bench_database(Path(tmp_name)) as (database_url, redis_url, _),
        BlackHole(lifetime=600) as hole,
    ):
        tmp = Path(tmp_name)
        env = child_env(database_url, redis_url)
        # On, with limits no run reaches: every request counts itself in Redis.
        env.update(
            LINLI_RATE_LIMITS="on",
            LINLI_RATE_LIMIT_USER_PER_MINUTE=str(10**9),
            LINLI_RATE_LIMIT_IP_PER_MINUTE=str(10**9),
        )
        linli("migrate", env=env)
        tokens = asyncio.run(make_tokens(env))
        runs = []
        for label, url in (("real Redis", redis_url), ("black hole", hole.url)):
            server = start({**env, "LINLI_REDIS_URL": url}, tmp / f"{label}.log", tokens[0])
            try:
                import uvloop

                runs.append(
                    uvloop.run(run_me(label, server.port, tokens, args.connections, duration))
                )
            finally:
                stop_server(server)
    return 0 if report(runs, hole) else 1


if __name__ == "__main__":
    sys.exit(main())
