"""The points ledger: every balance change is one append-only row, paid at most once per source.

The balance moves only through one guarded UPDATE (it can never go below zero, whatever
runs beside it), and each change writes one ledger row whose (user, source_type,
source_id) is unique, so the same event never pays twice and the balance always equals
the sum of the ledger.

Earned points sit in batches by the moment they expire (by default the end of the next
calendar year). A debit takes from the batch that expires first and records what it took,
so a refund puts points back where they came from. Every writer of a user's batches first
moves that user's balance, which holds the user's row until commit: the batches of one
user are only ever changed by one transaction at a time. Expiry is a ledger row too.

Services that award or spend inside their own transaction (a booking, a wish) call the
`*_in_tx` functions; everything else calls `award` / `spend`, which open one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.core.clock import clock, local_zone, to_local
from backend.core.config import get_settings
from backend.core.errors import NotFound
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.points.exceptions import InsufficientPoints
from backend.points.models import PointsBatch, PointsBatchUse, PointsLedgerEntry, PointsPreference
from backend.points.views import ExpiringPoints, PointsStatement

SOURCE_ADJUSTMENT = "adjustment"
SOURCE_EXPIRY = "expiry"
SOURCE_REWARD = "reward"
SOURCE_REFUND = "reward_refund"

BATCH_SIZE = 500


class Undo(Exception):
    """Roll back a savepoint whose work turned out not to apply (a duplicate, a moved row)."""


def require_transaction(name: str) -> None:
    if not isinstance(connections.get("default"), TransactionalDBClient):
        raise RuntimeError(f"{name} must run inside the caller's transaction")


def expiry_for(moment: datetime) -> datetime:
    """When points earned at `moment` expire: the end of the year `points_expiry_years` later."""
    local = to_local(moment)
    year = local.year + get_settings().points_expiry_years + 1
    # Stored as the first instant after the last day, so "expires_at <= now" is exact.
    return datetime(year, 1, 1, tzinfo=local_zone()).astimezone(UTC)


def last_valid_day(expires_at: datetime) -> datetime:
    """The local day on which points expiring at `expires_at` can last be used."""
    return (to_local(expires_at) - timedelta(microseconds=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


# --- the ledger core: balance, row, batches ---


async def _move_balance(user_id: int, delta: int) -> bool:
    guarded = User.filter(id=user_id)
    if delta < 0:
        guarded = guarded.filter(points_balance__gte=-delta)
    return await guarded.update(points_balance=F("points_balance") + delta) == 1


async def append_entry(
    *,
    user_id: int,
    delta: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None = None,
    rule_id: int | None = None,
) -> PointsLedgerEntry:
    # The balance UPDATE before this holds the user's row until commit, so this read is exact.
    balance, community_id, unit_id = await User.get(id=user_id).values_list(
        "points_balance", "community_id", "unit_id"
    )
    return await PointsLedgerEntry.create(
        user_id=user_id,
        delta=delta,
        balance_after=balance,
        source_type=source_type,
        source_id=source_id,
        reason=reason[:255],
        actor_id=actor_id,
        community_id=community_id,
        unit_id=unit_id,
        rule_id=rule_id,
        created_at=clock.now(),
    )


async def _put_into_batches(
    entry: PointsLedgerEntry, amount: int, refund_of: PointsLedgerEntry | None
) -> None:
    if refund_of is not None:
        # Back where they came from, so a refund never gives points a longer life.
        for use in await PointsBatchUse.filter(entry_id=refund_of.id):
            await PointsBatch.filter(id=use.batch_id).update(remaining=F("remaining") + use.amount)
            amount -= use.amount
    if amount <= 0:
        return
    expires_at = expiry_for(entry.created_at)
    await PointsBatch.bulk_create(
        [PointsBatch(user_id=entry.user_id, expires_at=expires_at)], ignore_conflicts=True
    )
    await PointsBatch.filter(user_id=entry.user_id, expires_at=expires_at).update(
        earned=F("earned") + amount, remaining=F("remaining") + amount
    )


async def _take_from_batches(entry: PointsLedgerEntry, amount: int) -> None:
    uses: list[PointsBatchUse] = []
    batches = await PointsBatch.filter(user_id=entry.user_id, remaining__gt=0).order_by(
        "expires_at", "id"
    )
    for batch in batches:
        if amount == 0:
            break
        take = min(batch.remaining, amount)
        # The user's row lock already serialises this; the guard makes a broken rule loud.
        taken = await PointsBatch.filter(id=batch.id, remaining__gte=take).update(
            remaining=F("remaining") - take
        )
        if taken != 1:
            raise RuntimeError(f"points batch {batch.id} moved under its user's lock")
        uses.append(PointsBatchUse(entry_id=entry.id, batch_id=batch.id, amount=take))
        amount -= take
    if uses:
        await PointsBatchUse.bulk_create(uses)


async def change_balance_in_tx(
    *,
    user_id: int,
    delta: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None,
    rule_id: int | None = None,
    refund_of: PointsLedgerEntry | None = None,
) -> PointsLedgerEntry | None:
    if delta < 0:
        # Points past their date are not spendable, even before the job has run.
        await _expire_due_in_tx(user_id=user_id)
    try:
        # A savepoint: a refusal or a duplicate undoes only this change, and on PostgreSQL a
        # failed INSERT does not abort the caller's transaction.
        async with in_transaction():
            if not await _move_balance(user_id, delta):
                if await already_recorded(user_id, source_type, source_id):
                    return None
                if not await User.exists(id=user_id):
                    raise NotFound("用户不存在")
                raise InsufficientPoints()
            entry = await append_entry(
                user_id=user_id,
                delta=delta,
                source_type=source_type,
                source_id=source_id,
                reason=reason,
                actor_id=actor_id,
                rule_id=rule_id,
            )
            if delta > 0:
                await _put_into_batches(entry, delta, refund_of)
            elif delta < 0:
                await _take_from_batches(entry, -delta)
            return entry
    except IntegrityError:
        if await already_recorded(user_id, source_type, source_id):
            return None
        raise


async def already_recorded(user_id: int, source_type: str, source_id: str) -> bool:
    return await PointsLedgerEntry.exists(
        user_id=user_id, source_type=source_type, source_id=source_id
    )


# --- award and spend by amount (the interface other domains use) ---


async def award_in_tx(
    *,
    user_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """Credit `amount` within the caller's transaction; None if this source already paid."""
    if amount <= 0:
        raise ValueError("award amount must be positive")
    require_transaction("award_in_tx")
    return await change_balance_in_tx(
        user_id=user_id,
        delta=amount,
        source_type=source_type,
        source_id=source_id,
        reason=reason,
        actor_id=actor_id,
    )


async def spend_in_tx(
    *,
    user_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """Debit `amount` within the caller's transaction, never below zero; None if already charged."""
    if amount <= 0:
        raise ValueError("spend amount must be positive")
    require_transaction("spend_in_tx")
    return await change_balance_in_tx(
        user_id=user_id,
        delta=-amount,
        source_type=source_type,
        source_id=source_id,
        reason=reason,
        actor_id=actor_id,
    )


async def refund_in_tx(
    *, spent: PointsLedgerEntry, source_type: str, reason: str, actor_id: int | None = None
) -> PointsLedgerEntry | None:
    """Give back what `spent` took, into the batches it took from; None if already given back."""
    if spent.delta >= 0:
        raise ValueError("only a debit can be refunded")
    require_transaction("refund_in_tx")
    return await change_balance_in_tx(
        user_id=spent.user_id,
        delta=-spent.delta,
        source_type=source_type,
        source_id=spent.source_id,
        reason=reason,
        actor_id=actor_id,
        refund_of=spent,
    )


async def award(
    *,
    user_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """Credit `amount` in a transaction of its own; None if this source already paid."""
    async with in_transaction():
        return await award_in_tx(
            user_id=user_id,
            amount=amount,
            source_type=source_type,
            source_id=source_id,
            reason=reason,
            actor_id=actor_id,
        )


async def spend(
    *,
    user_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    reason: str,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """Debit `amount` in a transaction of its own, never below zero; None if already charged."""
    async with in_transaction():
        return await spend_in_tx(
            user_id=user_id,
            amount=amount,
            source_type=source_type,
            source_id=source_id,
            reason=reason,
            actor_id=actor_id,
        )


# --- expiry ---


async def _expire_batch_in_tx(batch: PointsBatch) -> PointsLedgerEntry | None:
    amount, total = batch.remaining, batch.expired + batch.remaining
    try:
        async with in_transaction():
            if not await _move_balance(batch.user_id, -amount):
                raise Undo()
            # Guarded on what was read: a second expirer, or a refund in between, finds a
            # different row and leaves it for the next run.
            zeroed = await PointsBatch.filter(
                id=batch.id, remaining=amount, expired=batch.expired
            ).update(remaining=0, expired=total)
            if zeroed != 1:
                raise Undo()
            day = last_valid_day(batch.expires_at)
            return await append_entry(
                user_id=batch.user_id,
                delta=-amount,
                source_type=SOURCE_EXPIRY,
                # The running total makes each expiry of this batch its own source, once.
                source_id=f"{batch.id}-{total}",
                reason=f"积分到期（有效期至 {day.year}年{day.month}月{day.day}日）",
            )
    except (Undo, IntegrityError):
        return None


async def _expire_due_in_tx(*, user_id: int) -> None:
    due = await PointsBatch.filter(
        user_id=user_id, expires_at__lte=clock.now(), remaining__gt=0
    ).order_by("expires_at")
    for batch in due:
        await _expire_batch_in_tx(batch)


async def expire_due_batches(*, limit: int = BATCH_SIZE) -> int:
    """Write an expiry row for each batch past its date with points left; safe to run twice
    at once. Returns how many batches it expired."""
    due = (
        await PointsBatch.filter(expires_at__lte=clock.now(), remaining__gt=0)
        .order_by("expires_at", "id")
        .limit(limit)
    )
    expired = 0
    for batch in due:
        async with in_transaction():
            expired += await _expire_batch_in_tx(batch) is not None
    return expired


def _month_start(moment: datetime, months_ahead: int) -> datetime:
    """The first instant of the month `months_ahead` after `moment`'s, in its time zone."""
    year, month = divmod(moment.year * 12 + moment.month - 1 + months_ahead, 12)
    return datetime(year, month + 1, 1, tzinfo=moment.tzinfo)


async def notify_expiring_points(*, limit: int = BATCH_SIZE) -> int:
    """Tell each user, once per batch, about points that expire by the end of next month."""
    now = clock.now()
    horizon = _month_start(to_local(now), 2).astimezone(UTC)
    due = (
        await PointsBatch.filter(
            expires_at__gt=now, expires_at__lte=horizon, remaining__gt=0, expiry_notified=False
        )
        .order_by("expires_at", "id")
        .limit(limit)
    )
    sent = 0
    for batch in due:
        async with in_transaction():
            if not await PointsBatch.filter(id=batch.id, expiry_notified=False).update(
                expiry_notified=True
            ):
                continue
            day = last_valid_day(batch.expires_at)
            summary = f"{batch.remaining} 积分将于 {day.month}月{day.day}日后过期"
            await enqueue(
                template_key="notice",
                context={
                    "title": "积分即将过期",
                    "summary": summary,
                    "body": f"您有 {summary}，请尽快到积分商城兑换礼品。",
                    "url": "/h5/points",
                    "page": "pages/points/index",
                },
                dedupe_key=f"points-expiring:{batch.id}",
                user_id=batch.user_id,
            )
            sent += 1
    return sent


# --- what a resident sees ---


async def get_balance(*, user_id: int) -> int:
    """The user's current balance (NotFound for an unknown user)."""
    balance = await User.get_or_none(id=user_id).values_list("points_balance", flat=True)
    if balance is None:
        raise NotFound("用户不存在")
    return balance


async def list_ledger(*, user_id: int, page: PageRequest) -> Page[PointsLedgerEntry]:
    """The user's ledger rows, newest first, one page at a time."""
    return await paginate(PointsLedgerEntry.filter(user_id=user_id), page, descending=True)


async def list_expiring(*, user_id: int) -> list[ExpiringPoints]:
    """The user's unexpired points by the moment they expire, soonest first."""
    batches = (
        await PointsBatch.filter(user_id=user_id, remaining__gt=0)
        .order_by("expires_at")
        .values_list("remaining", "expires_at")
    )
    return [ExpiringPoints(amount=amount, expires_at=at) for amount, at in batches]


async def get_statement(*, user_id: int, page: PageRequest) -> PointsStatement:
    """The user's balance, what expires when, and one page of their ledger, newest first."""
    balance = await get_balance(user_id=user_id)
    return PointsStatement(
        balance=balance,
        expiring=await list_expiring(user_id=user_id),
        page=await list_ledger(user_id=user_id, page=page),
    )


async def get_preferences(*, user_id: int) -> PointsPreference:
    """The user's points settings (defaults when they never changed them)."""
    preference = await PointsPreference.get_or_none(user_id=user_id)
    return preference or PointsPreference(user_id=user_id, leaderboard_opt_in=False)


async def set_leaderboard_opt_in(*, user_id: int, opt_in: bool) -> PointsPreference:
    """Show (or stop showing) the user by name on leaderboards."""
    now = clock.now()
    async with in_transaction():
        await PointsPreference.bulk_create(
            [PointsPreference(user_id=user_id, leaderboard_opt_in=opt_in, updated_at=now)],
            ignore_conflicts=True,
        )
        await PointsPreference.filter(user_id=user_id).update(
            leaderboard_opt_in=opt_in, updated_at=now
        )
    return await PointsPreference.get(user_id=user_id)
