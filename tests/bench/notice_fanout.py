"""Notice fan-out: a notice to 5,000 and to 50,000 people through one and through two
`linli bot` processes against the fake WeChat server.

Prints, per run: messages per second (from publishing and starting the bots until the last
recipient's message reached WeChat, and from the first message sent), duplicates
(recipients WeChat heard from more than once), each bot's peak memory (VmHWM) and CPU.
Targets: ≥ 500 messages/s with one process, and peak RSS at 50,000 recipients ≤ 1.5× that
at 5,000 (the fan-out streams in batches).

Half the recipients are mini-program users with one subscribe consent, half official-account
users (template messages); the communities' group robots get the notice too. On PostgreSQL +
Redis when LINLI_TEST_DATABASE_URL and LINLI_TEST_REDIS_URL are set, else SQLite. Not part
of `make test`.

    python -m tests.bench.notice_fanout [--sizes 5000 50000] [--bots 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.bench.bench_api import ROOT, bench_database, child_env, linli
from tests.fakes.wechat_server import FakeWechat

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
TEMPLATE = "/cgi-bin/message/template/send"
ROBOT = "/cgi-bin/webhook/send"
# Communities: the smallest run notifies "small", the larger ones the whole street.
SMALL = 5_000
INSERT_BATCH = 2_000
TIMEOUT_SECONDS = 900


@dataclass
class Run:
    recipients: int
    bots: int
    seconds: float
    sending_seconds: float
    duplicates: int
    missed: int
    robots: int
    peak_rss_mb: list[float]
    cpu_seconds: list[float]

    @property
    def rate(self) -> float:
        return self.recipients / self.seconds

    @property
    def sending_rate(self) -> float:
        """Once the bot has started and sent its first message (startup left out)."""
        return self.recipients / self.sending_seconds


def _db_env(env: dict[str, str]) -> None:
    os.environ.update(env)
    from backend.core.config import reset_settings

    reset_settings()


async def _with_db(env: dict[str, str], work):
    _db_env(env)
    from backend.core.config import get_settings
    from backend.core.db import close_db, init_db

    await init_db(get_settings())
    try:
        return await work()
    finally:
        await close_db()


async def populate(env: dict[str, str], total: int) -> int:
    """`total` residents: SMALL in one community, the rest in another; returns the admin id."""
    from backend.accounts import service as accounts_service
    from backend.accounts.models import User, WechatIdentity
    from backend.core.config import get_settings
    from backend.notices.models import SubscriptionConsent
    from backend.orgs.models import Community, Street

    async def work() -> int:
        settings = get_settings()
        street = await Street.create(slug="bench", name="石门二路街道")
        small = await Community.create(
            street=street, slug="small", name="小社区", wecom_robot_key="robot-small"
        )
        large = await Community.create(
            street=street, slug="large", name="大社区", wecom_robot_key="robot-large"
        )
        for start in range(0, total, INSERT_BATCH):
            numbers = range(start, min(total, start + INSERT_BATCH))
            await User.bulk_create(
                [User(nickname=f"u{n}", community=small if n < SMALL else large) for n in numbers]
            )
            ids = await User.filter(nickname__in=[f"u{n}" for n in numbers]).values_list(
                "id", "nickname"
            )
            identities, consents = [], []
            for user_id, nickname in ids:
                n = int(nickname[1:])
                mini = n % 2 == 0
                identities.append(
                    WechatIdentity(
                        user_id=user_id,
                        kind="miniprogram" if mini else "official_account",
                        app_id=settings.mp_appid if mini else settings.oa_appid,
                        openid=f"o{n}",
                    )
                )
                if mini:
                    consents.append(
                        SubscriptionConsent(user_id=user_id, template_key="notice", remaining=1)
                    )
            await WechatIdentity.bulk_create(identities)
            await SubscriptionConsent.bulk_create(consents)
        admin = await User.create(nickname="周主任")
        await accounts_service.grant_role(
            actor=None, user_id=admin.id, role="street_admin", community_id=None
        )
        return admin.id

    return await _with_db(env, work)


async def publish(env: dict[str, str], admin_id: int, recipients: int) -> int:
    """Reset consents and the outbox, then publish a notice to `recipients` people."""
    from backend.accounts.models import User
    from backend.core.models import OutboxMessage
    from backend.notices import service as notices_service
    from backend.notices.models import SubscriptionConsent, SubscriptionHold
    from backend.notices.schemas import NoticeIn
    from backend.orgs.models import Community

    async def work() -> int:
        await OutboxMessage.all().delete()
        await SubscriptionHold.all().delete()
        await SubscriptionConsent.all().update(remaining=1)
        small = await Community.get(slug="small")
        notice = await notices_service.create_notice(
            actor=await User.get(id=admin_id),
            data=NoticeIn(
                community_id=small.id if recipients <= SMALL else None,
                title="关于开展夏季消防安全检查的通知",
                body="7 月 1 日起，社区将逐楼开展消防安全检查，请居民配合。",
            ),
        )
        return notice.id

    return await _with_db(env, work)


async def unfinished(env: dict[str, str], notice_id: int) -> int:
    from backend.core.models import OutboxMessage
    from backend.notices.models import Notice

    async def work() -> int:
        notice = await Notice.get(id=notice_id)
        if notice.fanout_done_at is None:
            return -1
        return await OutboxMessage.filter(status__in=("pending", "retry")).count()

    return await _with_db(env, work)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(
    env: dict[str, str], fake: FakeWechat, admin_id: int, recipients: int, bots: int, tmp: Path
) -> Run:
    fake.reset()
    notice_id = asyncio.run(publish(env, admin_id, recipients))
    started = time.monotonic()
    processes = []
    for n in range(bots):
        with open(tmp / f"bot-{recipients}-{bots}-{n}.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "backend.cli", "bot"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        deadline = started + TIMEOUT_SECONDS
        first_send = None
        while (sent := len(fake.calls_to(SUBSCRIBE)) + len(fake.calls_to(TEMPLATE))) < recipients:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"run of {recipients} with {bots} bot(s) did not finish")
            if sent and first_send is None:
                first_send = time.monotonic()
            # Counting the fake's calls costs the fake CPU: not too often.
            time.sleep(0.25)
        finished = time.monotonic()
        seconds = finished - started
        sending_seconds = finished - (first_send or started)
        while asyncio.run(unfinished(env, notice_id)) != 0:
            if time.monotonic() > deadline:
                raise SystemExit("outbox rows left unfinished")
            time.sleep(0.5)
        peaks = [peak_rss_mb(p.pid) for p in processes]
        cpu = [cpu_seconds(p.pid) for p in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    heard = Counter(c.body["touser"] for c in fake.calls_to(SUBSCRIBE) + fake.calls_to(TEMPLATE))
    return Run(
        recipients=recipients,
        bots=bots,
        seconds=seconds,
        sending_seconds=sending_seconds,
        duplicates=sum(n - 1 for n in heard.values() if n > 1),
        missed=recipients - len(heard),
        robots=len(fake.calls_to(ROBOT)),
        peak_rss_mb=peaks,
        cpu_seconds=cpu,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000])
    parser.add_argument("--bots", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    if any(s != SMALL and s < SMALL for s in sizes):
        raise SystemExit(f"sizes are {SMALL} or more")

    fake = FakeWechat().start()
    runs: list[Run] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="linli-fanout-") as tmp_name,
            bench_database(Path(tmp_name)) as (database_url, redis_url, _),
        ):
            tmp = Path(tmp_name)
            env = child_env(database_url, redis_url)
            env.update(
                LINLI_WECHAT_API_BASE=fake.base_url,
                LINLI_WECOM_WEBHOOK_BASE=fake.base_url,
                LINLI_BOT_POLL_SECONDS="0.2",
                # The fake has no limit: measure the bot, not the pacing.
                LINLI_WECHAT_SENDS_PER_SECOND="0",
            )
            linli("migrate", env=env)
            admin_id = asyncio.run(populate(env, max(sizes)))
            for recipients in sizes:
                for bots in args.bots:
                    run = run_once(env, fake, admin_id, recipients, bots, tmp)
                    runs.append(run)
                    print(
                        f"{run.recipients:>7} recipients, {run.bots} bot(s): "
                        f"{run.rate:>6.0f} messages/s in {run.seconds:.1f} s "
                        f"({run.sending_rate:.0f}/s from the first send), "
                        f"duplicates {run.duplicates}, missed {run.missed}, "
                        f"robots {run.robots}, peak RSS "
                        + " / ".join(f"{mb:.0f} MB" for mb in run.peak_rss_mb)
                        + ", bot CPU "
                        + " / ".join(f"{c:.1f} s" for c in run.cpu_seconds),
                        flush=True,
                    )
    finally:
        fake.stop()

    stack = "PostgreSQL + Redis" if redis_url else "SQLite, no Redis"
    print(f"\nNotice fan-out — {stack}")
    single = [r for r in runs if r.bots == 1]
    if single:
        print(f"one bot: {min(r.rate for r in single):.0f} messages/s at worst (target ≥ 500)")
    by_size = {r.recipients: max(r.peak_rss_mb) for r in single}
    if SMALL in by_size and len(by_size) > 1:
        largest = max(by_size)
        ratio = by_size[largest] / by_size[SMALL]
        print(f"peak RSS {largest} vs {SMALL}: {ratio:.2f}× (target ≤ 1.5×)")
    return 1 if any(r.duplicates or r.missed for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
