"""`GET /api/v1/me/points` with 1,000 and with 1,000,000 ledger rows in one community.

Two PostgreSQL databases are migrated and filled in bulk (INSERT … SELECT over
generate_series): 1,000 residents of one community, the ledger rows spread over them with
every tenth row belonging to the resident who asks (100 rows in the small database,
100,000 in the large one), running balances, and each resident's points in a batch. A
server runs on each database, and rounds of closed-loop requests alternate between the
two, so drift on a shared machine lands on both. The statement must not grow with the
ledger: the p99 of the large database may be at most 1.2 × the small one's.
Needs LINLI_TEST_DATABASE_URL (Redis optional). Not part of pytest.

    python -m tests.bench.points_statement [--rounds 5] [--duration 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg

from tests.bench.bench_api import (
    ROOT,
    Result,
    child_env,
    free_port,
    linli,
    measure,
    wait_until_ready,
)

SIZES = (1_000, 1_000_000)
RESIDENTS = 1_000
MAX_RATIO = 1.2
ASKER_ID = 1  # the first resident inserted; every tenth ledger row is theirs

FILL = """
INSERT INTO street (slug, name) VALUES ('bench', '压测街道');
INSERT INTO community (slug, name, street_id) VALUES ('bench', '压测社区', 1);
INSERT INTO "user" (nickname, points_balance, created_at, community_id)
    SELECT '居民' || g, 0, now(), 1 FROM generate_series(1, {residents}) AS g;
INSERT INTO points_ledger
    (user_id, delta, balance_after, source_type, source_id, reason, community_id, created_at)
SELECT user_id, 5, 5 * row_number() OVER (PARTITION BY user_id ORDER BY g),
       'activity_attended', g::text, '参加社区活动', 1,
       now() - make_interval(secs => ({rows} - g) * 30)
FROM (
    SELECT g, CASE WHEN g % 10 = 0 THEN 1 ELSE 2 + g % ({residents} - 1) END AS user_id
    FROM generate_series(1, {rows}) AS g
) AS spread
ORDER BY g;
UPDATE "user" SET points_balance = totals.sum
FROM (SELECT user_id, sum(delta) FROM points_ledger GROUP BY user_id) AS totals
WHERE "user".id = totals.user_id;
INSERT INTO points_batch (user_id, expires_at, earned, remaining, expired, expiry_notified)
    SELECT id, date_trunc('year', now()) + interval '2 years', points_balance, points_balance,
           0, false
    FROM "user";
ANALYZE;
"""


def _admin(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def _run(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def database(pg_url: str) -> Iterator[str]:
    name = f"linli_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_run(_admin(pg_url), f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_run(_admin(pg_url), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _count(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        total = await conn.fetchval("SELECT count(*) FROM points_ledger WHERE community_id = 1")
        mine = await conn.fetchval(
            "SELECT count(*) FROM points_ledger WHERE user_id = $1", ASKER_ID
        )
        return total, mine
    finally:
        await conn.close()


def fill(database_url: str, rows: int) -> tuple[int, int]:
    started = time.monotonic()
    asyncio.run(_run(_admin(database_url), FILL.format(rows=rows, residents=RESIDENTS)))
    total, mine = asyncio.run(_count(_admin(database_url)))
    print(f"  {total:>9,} ledger rows ({mine:,} the asker's) in {time.monotonic() - started:.0f} s")
    return total, mine


@contextmanager
def server(env: dict[str, str], workers: int, log: Path) -> Iterator[str]:
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def asker_token(env: dict[str, str]) -> str:
    os.environ.update(env)
    from backend.accounts.service import issue_access_token
    from backend.core.config import reset_settings

    reset_settings()
    return issue_access_token(user_id=ASKER_ID)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per database")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per round (≤ 20)")
    # Few clients: the latency is the request's own, not time queued behind the others.
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server processes per database")
    args = parser.parse_args(argv)
    pg_url = os.environ.get("LINLI_TEST_DATABASE_URL")
    if not pg_url:
        raise SystemExit("set LINLI_TEST_DATABASE_URL to a PostgreSQL server to run this bench")
    redis_url = os.environ.get("LINLI_TEST_REDIS_URL")
    duration = min(args.duration, 20.0)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="linli-bench-")))
        secret = uuid.uuid4().hex * 2
        urls: dict[int, str] = {}
        for rows in SIZES:
            database_url = stack.enter_context(database(pg_url))
            env = child_env(database_url, redis_url) | {"LINLI_SECRET_KEY": secret}
            print(f"database with {rows:,} rows: migrating and filling …")
            linli("migrate", env=env)
            fill(database_url, rows)
            urls[rows] = stack.enter_context(server(env, args.workers, tmp / f"server-{rows}.log"))
        headers = {"Authorization": f"Bearer {asker_token(env)}"}

        latencies: dict[int, list[float]] = {rows: [] for rows in SIZES}
        errors = dict.fromkeys(SIZES, 0)
        paired: list[float] = []
        for round_no in range(args.rounds):
            this_round: dict[int, Result] = {}
            # Alternate which database goes first, so neither always follows the other.
            for rows in SIZES if round_no % 2 == 0 else reversed(SIZES):
                result = asyncio.run(
                    measure(
                        urls[rows],
                        f"{rows} rows",
                        "/api/v1/me/points",
                        headers=headers,
                        duration=duration,
                        concurrency=args.concurrency,
                    )
                )
                latencies[rows] += result.latencies
                errors[rows] += result.errors
                this_round[rows] = result
            small_p99, large_p99 = (this_round[rows].percentile(0.99) for rows in SIZES)
            paired.append(large_p99 / small_p99)

    results = {
        rows: Result(f"{rows:,} rows", len(latencies[rows]), errors[rows],
                     duration * args.rounds, latencies[rows])
        for rows in SIZES
    }  # fmt: skip
    small, large = (results[rows] for rows in SIZES)
    ratio = large.percentile(0.99) / small.percentile(0.99)
    stack_name = "PostgreSQL + Redis" if redis_url else "PostgreSQL"
    print(
        f"\nGET /api/v1/me/points — {stack_name}, {args.workers} worker(s) per database, "
        f"{args.concurrency} clients, {args.rounds} × {duration:.0f} s rounds per database"
    )
    print(f"{'ledger rows':<16}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in (small, large):
        print(
            f"{r.name:<16}{r.requests:>10}{r.rate:>9.0f}{r.percentile(0.5):>9.1f}"
            f"{r.percentile(0.99):>9.1f}{r.errors:>8}"
        )
    verdict = "ok" if ratio <= MAX_RATIO else "TOO SLOW"
    print(f"p99 ratio (1,000,000 / 1,000): {ratio:.2f} (limit {MAX_RATIO}) — {verdict}")
    # The same ratio round by round (each pair measured back to back): its spread shows how
    # much of the difference is the machine rather than the ledger.
    print("p99 ratio per round: " + " ".join(f"{r:.2f}" for r in paired))
    print(f"median of the per-round ratios: {statistics.median(paired):.2f}")
    return 0 if ratio <= MAX_RATIO and not small.errors and not large.errors else 1


if __name__ == "__main__":
    sys.exit(main())
