"""The retention job: each purge on SQLite and PostgreSQL, with the injectable clock, in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.core import quota
from backend.core.clock import clock
from backend.core.models import IdempotencyRecord, OutboxMessage, UsageCounter
from backend.core.outbox import enqueue
from backend.wishes.models import Wish, WishPhoto
from bot import jobs_retention
from bot.scheduler import JOBS
from tests.factories import make_community, make_user

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    # Several batches even for a handful of rows, so the loop is what is tested.
    monkeypatch.setattr(jobs_retention, "BATCH_SIZE", 2)
    clock.set(NOW)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


async def outbox_row(name: str, *, status: str, age_days: float) -> int:
    await enqueue(
        template_key="notice",
        context={"title": "通知", "body": f"王阿姨 {name}"},
        dedupe_key=f"retention:{name}",
        user_id=None,
    )
    row = await OutboxMessage.get(dedupe_key=f"retention:{name}")
    await OutboxMessage.filter(id=row.id).update(status=status, created_at=days_ago(age_days))
    return row.id


async def test_the_job_is_scheduled():
    assert "retention.purge" in {job.name for job in JOBS}


async def test_final_outbox_rows_lose_their_context_then_the_row(settings):
    context_days, row_days = settings.retention_outbox_context_days, settings.retention_outbox_days
    emptied = [
        await outbox_row(f"{status}-old", status=status, age_days=context_days + 1)
        for status in ("sent", "failed", "skipped", "refused", "sent")
    ]
    recent = await outbox_row("sent-new", status="sent", age_days=context_days - 1)
    waiting = await outbox_row("pending-old", status="pending", age_days=context_days + 5)
    retrying = await outbox_row("retry-ancient", status="retry", age_days=row_days + 5)
    ancient = [
        await outbox_row(f"ancient-{n}", status="sent", age_days=row_days + 1) for n in range(3)
    ]

    await jobs_retention.purge_expired_data(settings)

    rows = {row.id: row for row in await OutboxMessage.all()}
    assert all(rows[i].context == {} and rows[i].status != "pending" for i in emptied)
    assert rows[recent].context["body"] == "王阿姨 sent-new"
    # Rows still to be sent keep what they need, however old.
    assert rows[waiting].context and rows[retrying].context
    assert not set(ancient) & set(rows)
    assert set(rows) == {*emptied, recent, waiting, retrying}


async def test_expired_idempotency_records_are_deleted(settings):
    ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
    for n, started in enumerate([NOW - ttl - timedelta(minutes=1)] * 3 + [NOW - ttl / 2]):
        await IdempotencyRecord.create(
            scope="user:1", key=f"k{n}", request_hash="h", status="done", created_at=started
        )

    await jobs_retention.purge_expired_data(settings)

    assert await IdempotencyRecord.all().values_list("key", flat=True) == ["k3"]


async def test_usage_counters_are_deleted_after_their_period(settings):
    keep_days = settings.retention_usage_counter_days
    clock.set(days_ago(keep_days + 1))
    await quota.take("checkin:1", bucket=quota.local_day(), limit=5)
    await quota.take("checkin:2", bucket=quota.local_day(), limit=5)
    clock.set(days_ago(keep_days - 1))
    await quota.take("checkin:1", bucket=quota.local_day(), limit=5)
    clock.set(NOW)

    await jobs_retention.purge_expired_data(settings)

    assert await UsageCounter.all().values_list("key", "count") == [("checkin:1", 1)]


async def make_wish(status: str, *, created: float, closed: float | None = None, **fields):
    community = await make_community()
    poster = await make_user(community=community)
    wish = await Wish.create(
        community=community,
        poster=poster,
        title="陪我去医院复诊",
        description="周五下午",
        category="生活帮扶",
        status=status,
        address="石门二路 100 弄 3 号 502",
        created_at=days_ago(created),
        closed_at=None if closed is None else days_ago(closed),
        **fields,
    )
    await WishPhoto.create(
        wish=wish, content_type="image/jpeg", content=b"\xff\xd8photo", created_at=wish.created_at
    )
    return wish


async def test_ended_wishes_lose_their_address_and_photo(settings):
    days = settings.retention_wish_days
    ended = [
        await make_wish("closed", created=days + 30, closed=days + 1),
        await make_wish("removed", created=days + 30, closed=days + 2),
        await make_wish("withdrawn", created=days + 3),
        await make_wish("rejected", created=days + 40, reviewed_at=days_ago(days + 1)),
    ]
    kept = [
        await make_wish("closed", created=days + 30, closed=days - 1),
        await make_wish("rejected", created=days + 40, reviewed_at=days_ago(days - 1)),
        # Still running, however old: the claimer needs the address.
        await make_wish("claimed", created=days + 60),
        await make_wish("fulfilled", created=days + 60),
    ]

    await jobs_retention.purge_expired_data(settings)

    addresses = dict(await Wish.all().values_list("id", "address"))
    assert [addresses[w.id] for w in ended] == [""] * 4
    assert all(addresses[w.id] == "石门二路 100 弄 3 号 502" for w in kept)
    photographed = set(await WishPhoto.all().values_list("wish_id", flat=True))
    assert photographed == {w.id for w in kept}
    # The wishes themselves stay (points and thanks refer to them).
    assert await Wish.all().count() == 8


async def test_a_second_run_finds_nothing_left(settings):
    await outbox_row("old", status="sent", age_days=settings.retention_outbox_context_days + 1)
    await make_wish("closed", created=400, closed=settings.retention_wish_days + 1)
    await jobs_retention.purge_expired_data(settings)
    assert await jobs_retention.purge_outbox_contexts(before=NOW) == 0
    assert await jobs_retention.purge_wish_addresses(before=NOW) == 0
    assert await jobs_retention.purge_wish_photos(before=NOW) == 0
