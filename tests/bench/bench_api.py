"""`make bench`: throughput and latency of a few endpoints under `linli serve`.

On PostgreSQL + Redis (LINLI_TEST_DATABASE_URL and LINLI_TEST_REDIS_URL set) the server runs with
two workers on a database of its own; otherwise on SQLite with one worker. Every request goes to
127.0.0.1, every scenario is bounded by a duration, and the server is stopped at the end.
Each endpoint's throughput is also given relative to /healthz measured in the same run, which
says more than the absolute number on a shared machine. Not part of `make test`.

    python -m tests.bench.bench_api [--duration 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
MAX_DURATION = 20.0
WARMUP_SECONDS = 1.0


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def measure(
    base_url: str,
    name: str,
    path: str,
    *,
    headers: dict[str, str],
    duration: float,
    concurrency: int,
) -> Result:
    """Closed loop: `concurrency` clients each send the next request when the last one answers."""
    latencies: list[float] = []
    errors = 0

    # One client (one keep-alive connection) per simulated user: a single shared httpx pool
    # serialises on its own lock and would measure the load generator instead of the server.
    async def user(warmup_end: float, end: float) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
            while (now := time.perf_counter()) < end:
                response = await client.get(path)
                if now >= warmup_end:
                    latencies.append(time.perf_counter() - now)
                    errors += response.status_code != 200

    warmup_end = time.perf_counter() + WARMUP_SECONDS
    end = warmup_end + duration
    await asyncio.gather(*(user(warmup_end, end) for _ in range(concurrency)))
    return Result(name, len(latencies), errors, duration, latencies)


def child_env(database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LINLI_")}
    env.update(
        LINLI_ENV="dev",
        LINLI_DATABASE_URL=database_url,
        LINLI_SECRET_KEY=secrets.token_urlsafe(48),
        LINLI_RATE_LIMITS="off",
        LINLI_LOG_LEVEL="WARNING",
        LINLI_REDIS_PREFIX=f"bench{uuid.uuid4().hex[:8]}:",
        # Nothing in these scenarios calls WeChat; if something did, it must stay on this machine.
        LINLI_WECHAT_API_BASE="http://127.0.0.1:9",
        LINLI_WECOM_WEBHOOK_BASE="http://127.0.0.1:9",
    )
    if redis_url:
        env["LINLI_REDIS_URL"] = redis_url
    return env


@contextmanager
def bench_database(tmp: Path) -> Iterator[tuple[str, str | None, int]]:
    """(database url, redis url, workers): a fresh PostgreSQL database when configured."""
    pg_url = os.environ.get("LINLI_TEST_DATABASE_URL")
    redis_url = os.environ.get("LINLI_TEST_REDIS_URL")
    if not (pg_url and redis_url):
        yield f"sqlite://{tmp / 'bench.sqlite3'}", None, 1
        return
    import asyncpg

    admin = pg_url.replace("postgres://", "postgresql://", 1)
    name = f"linli_bench_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name, redis_url, 2
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def linli(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"linli {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


async def demo_user_token(env: dict[str, str]) -> str:
    """A bearer token for a seeded user, signed with the server's secret."""
    os.environ.update(env)
    from backend.accounts.models import User
    from backend.accounts.service import issue_access_token
    from backend.core.config import get_settings, reset_settings
    from backend.core.db import close_db, init_db

    reset_settings()
    await init_db(get_settings())
    try:
        user = await User.all().order_by("id").first()
    finally:
        await close_db()
    if user is None:
        raise SystemExit("seed-demo made no users")
    return issue_access_token(user_id=user.id)


def wait_until_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after 60 s:\n{log.read_text()}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(results: list[Result], *, stack: str, workers: int, concurrency: int) -> None:
    baseline = results[0].rate
    print(f"\nLinli bench — {stack}, linli serve --workers {workers}, {concurrency} clients")
    print(f"{'endpoint':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs healthz':>12}{'errors':>8}")
    for r in results:
        print(
            f"{r.name:<28}{r.rate:>9.0f}{r.percentile(0.50):>9.1f}{r.percentile(0.99):>9.1f}"
            f"{r.rate / baseline:>11.0%} {r.errors:>7}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint (≤ 20)")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    duration = min(args.duration, MAX_DURATION)

    with (
        tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp_name,
        bench_database(Path(tmp_name)) as (database_url, redis_url, workers),
    ):
        tmp = Path(tmp_name)
        env = child_env(database_url, redis_url)
        linli("migrate", env=env)
        linli("seed-demo", env=env)
        token = asyncio.run(demo_user_token(env))

        port = free_port()
        log = tmp / "server.log"
        with open(log, "w") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "serve", "--port", str(port),
                 "--workers", str(workers)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, server, log)
            scenarios = [
                ("GET /healthz", "/healthz", {}),
                ("GET /api/v1/communities", "/api/v1/communities", {}),
                ("GET /api/v1/me", "/api/v1/me", {"Authorization": f"Bearer {token}"}),
            ]
            results = [
                asyncio.run(
                    measure(
                        base_url,
                        name,
                        path,
                        headers=headers,
                        duration=duration,
                        concurrency=args.concurrency,
                    )
                )
                for name, path, headers in scenarios
            ]
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    stack = "PostgreSQL + Redis" if redis_url else "SQLite, no Redis"
    report(results, stack=stack, workers=workers, concurrency=args.concurrency)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
