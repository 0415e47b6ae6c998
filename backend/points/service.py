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

Earning rules price awards by event type: points per unit, a multiplier, and caps per
person per local day and month, kept in tallies that are raised by guarded statements.
A rule is changed by adding a version that starts now or later, so history never changes.

Services that award or spend inside their own transaction (a booking, a wish) call the
`*_in_tx` functions; everything else calls `award` / `spend`, which open one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, Invalid, NotFound
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.security import blind_index, mask_name
from backend.core.text import check_moment, clean_text
from backend.points.exceptions import CapReached, InsufficientPoints, PhoneAmbiguous, RuleInForce
from backend.points.models import (
    EarningRule,
    EarningTally,
    PointsBatch,
    PointsBatchUse,
    PointsLedgerEntry,
    PointsPreference,
)

log = logging.getLogger("linli.points")

SOURCE_ADJUSTMENT = "adjustment"
SOURCE_EXPIRY = "expiry"
SOURCE_REWARD = "reward"
SOURCE_REFUND = "reward_refund"

MAX_POINTS = 100_000
MAX_ADJUSTMENT = 10_000
MAX_MULTIPLIER_PERCENT = 1000
CAP_RETRIES = 5
# People named when a phone number matches several: enough to choose from, never a list.
PHONE_CANDIDATES = 5
BATCH_SIZE = 500


@dataclass(frozen=True)
class EventType:
    """Something that earns points, with the price used until a street admin sets a rule."""

    key: str
    label: str
    unit: str
    default_points: int


EVENT_STAFF_ADJUSTMENT = "staff_adjustment"
EVENT_TYPES: dict[str, EventType] = {
    e.key: e
    for e in (
        EventType("activity_attended", "参加活动", "次", 10),
        EventType("service_hour", "志愿服务", "小时", 10),
        EventType("wish_fulfilled", "完成微心愿", "个", 10),
        EventType("report_in_approved", "在职党员报到", "次", 50),
        # Staff say the exact amount: only this rule's caps apply to adjustments.
        EventType(EVENT_STAFF_ADJUSTMENT, "工作人员调整", "分", 1),
    )
}


@dataclass(frozen=True)
class RuleTerms:
    """What an award is priced by: a stored rule version, or the built-in default (rule_id None)."""

    event_type: str
    points: int
    multiplier_percent: int = 100
    daily_cap: int | None = None
    monthly_cap: int | None = None
    rule_id: int | None = None
    effective_from: datetime | None = None

    @property
    def label(self) -> str:
        return EVENT_TYPES[self.event_type].label

    def amount_for(self, quantity: int | float | Decimal, base_points: int | None = None) -> int:
        """Points for `quantity` units (rounded half up), with the multiplier applied."""
        per_unit = self.points if base_points is None else base_points
        raw = Decimal(per_unit) * Decimal(str(quantity)) * self.multiplier_percent / 100
        return int(raw.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ExpiringPoints:
    amount: int
    expires_at: datetime


@dataclass
class PointsStatement:
    """A user's balance, what of it expires when, and one page of their ledger, newest first."""

    balance: int
    expiring: list[ExpiringPoints]
    page: Page[PointsLedgerEntry]


@dataclass
class EventRules:
    """An event type's rule now, the versions scheduled to start later, and the past ones."""

    event: EventType
    current: RuleTerms
    upcoming: list[EarningRule]
    history: list[EarningRule]


class _Undo(Exception):
    """Roll back a savepoint whose work turned out not to apply (a duplicate, a moved row)."""


def _require_transaction(name: str) -> None:
    if not isinstance(connections.get("default"), TransactionalDBClient):
        raise RuntimeError(f"{name} must run inside the caller's transaction")


def local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def expiry_for(moment: datetime) -> datetime:
    """When points earned at `moment` expire: the end of the year `points_expiry_years` later."""
    local = moment.astimezone(local_zone())
    year = local.year + get_settings().points_expiry_years + 1
    # Stored as the first instant after the last day, so "expires_at <= now" is exact.
    return datetime(year, 1, 1, tzinfo=local_zone()).astimezone(UTC)


def last_valid_day(expires_at: datetime) -> datetime:
    """The local day on which points expiring at `expires_at` can last be used."""
    return (expires_at.astimezone(local_zone()) - timedelta(microseconds=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


# --- the ledger core: balance, row, batches ---


async def _move_balance(user_id: int, delta: int) -> bool:
    guarded = User.filter(id=user_id)
    if delta < 0:
        guarded = guarded.filter(points_balance__gte=-delta)
    return await guarded.update(points_balance=F("points_balance") + delta) == 1


async def _append_entry(
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


async def _change_balance_in_tx(
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
                if await _already_recorded(user_id, source_type, source_id):
                    return None
                if not await User.exists(id=user_id):
                    raise NotFound("用户不存在")
                raise InsufficientPoints()
            entry = await _append_entry(
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
        if await _already_recorded(user_id, source_type, source_id):
            return None
        raise


async def _already_recorded(user_id: int, source_type: str, source_id: str) -> bool:
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
    _require_transaction("award_in_tx")
    return await _change_balance_in_tx(
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
    _require_transaction("spend_in_tx")
    return await _change_balance_in_tx(
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
    _require_transaction("refund_in_tx")
    return await _change_balance_in_tx(
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


# --- earning rules ---


def _event(event_type: str) -> EventType:
    event = EVENT_TYPES.get(event_type)
    if event is None:
        raise ValueError(f"unknown points event type {event_type!r}")
    return event


def _terms(rule: EarningRule) -> RuleTerms:
    return RuleTerms(
        event_type=rule.event_type,
        points=rule.points,
        multiplier_percent=rule.multiplier_percent,
        daily_cap=rule.daily_cap,
        monthly_cap=rule.monthly_cap,
        rule_id=rule.id,
        effective_from=rule.effective_from,
    )


async def rule_terms(*, event_type: str, at: datetime | None = None) -> RuleTerms:
    """The terms in force for `event_type` at `at` (now by default): the latest version started."""
    event = _event(event_type)
    rule = (
        await EarningRule.filter(event_type=event_type, effective_from__lte=at or clock.now())
        .order_by("-effective_from")
        .first()
    )
    return _terms(rule) if rule else RuleTerms(event_type=event.key, points=event.default_points)


async def _claim_cap_room(*, user_id: int, terms: RuleTerms, amount: int, at: datetime) -> int:
    """Raise this user's day and month tallies by what the caps still allow; returns that."""
    local = at.astimezone(local_zone())
    periods = ((f"{local:%Y-%m-%d}", terms.daily_cap), (f"{local:%Y-%m}", terms.monthly_cap))
    caps = [(period, cap) for period, cap in periods if cap is not None]
    if not caps:
        return amount
    await EarningTally.bulk_create(
        [EarningTally(user_id=user_id, event_type=terms.event_type, period=p) for p, _ in caps],
        ignore_conflicts=True,
    )
    for _ in range(CAP_RETRIES):
        rows = await EarningTally.filter(
            user_id=user_id, event_type=terms.event_type, period__in=[p for p, _ in caps]
        ).values_list("period", "id", "earned")
        tallies = {period: (tally_id, earned) for period, tally_id, earned in rows}
        grant = max(0, min([amount] + [cap - tallies[p][1] for p, cap in caps]))
        if grant == 0:
            return 0
        try:
            async with in_transaction():
                for period, cap in caps:
                    # The cap itself is the guard: a tally never passes it, whoever raced us.
                    raised = await EarningTally.filter(
                        id=tallies[period][0], earned__lte=cap - grant
                    ).update(earned=F("earned") + grant)
                    if raised != 1:
                        raise _Undo()
            return grant
        except _Undo:
            continue
    raise Conflict("积分发放繁忙，请稍后再试", code="points_busy")


async def award_by_rule_in_tx(
    *,
    user_id: int,
    event_type: str,
    source_id: str,
    quantity: int | float | Decimal = 1,
    base_points: int | None = None,
    source_type: str | None = None,
    reason: str | None = None,
    occurred_at: datetime | None = None,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """Credit what the rule in force when the event happened pays, within the caller's
    transaction: points per unit (or `base_points`, e.g. an activity's own) × quantity ×
    multiplier, cut to the daily and monthly caps. A source pays once: None if it already
    did (or the rule pays nothing). A capped-out award is recorded with delta 0."""
    _require_transaction("award_by_rule_in_tx")
    when = occurred_at or clock.now()
    terms = await rule_terms(event_type=event_type, at=when)
    amount = terms.amount_for(quantity, base_points)
    source_type = source_type or event_type
    if amount <= 0 or await _already_recorded(user_id, source_type, source_id):
        return None
    text = reason or terms.label
    try:
        async with in_transaction():
            granted = await _claim_cap_room(user_id=user_id, terms=terms, amount=amount, at=when)
            if granted < amount:
                text += "（已达上限）" if granted == 0 else f"（已达上限，按 {granted} 分计）"
            entry = await _change_balance_in_tx(
                user_id=user_id,
                delta=granted,
                source_type=source_type,
                source_id=source_id,
                reason=text,
                actor_id=actor_id,
                rule_id=terms.rule_id,
            )
            if entry is None:
                raise _Undo()  # paid meanwhile: the tallies must not count it twice
            return entry
    except _Undo:
        return None


async def award_by_rule(
    *,
    user_id: int,
    event_type: str,
    source_id: str,
    quantity: int | float | Decimal = 1,
    base_points: int | None = None,
    source_type: str | None = None,
    reason: str | None = None,
    occurred_at: datetime | None = None,
    actor_id: int | None = None,
) -> PointsLedgerEntry | None:
    """`award_by_rule_in_tx` in a transaction of its own."""
    async with in_transaction():
        return await award_by_rule_in_tx(
            user_id=user_id,
            event_type=event_type,
            source_id=source_id,
            quantity=quantity,
            base_points=base_points,
            source_type=source_type,
            reason=reason,
            occurred_at=occurred_at,
            actor_id=actor_id,
        )


def _check_rule_values(
    *,
    event_type: str,
    points: int,
    multiplier_percent: int,
    daily_cap: int | None,
    monthly_cap: int | None,
    note: str,
) -> None:
    errors: dict[str, str] = {}
    if event_type not in EVENT_TYPES:
        errors["event_type"] = "不支持的积分事项"
    if not 0 <= points <= MAX_POINTS:
        errors["points"] = f"每次积分须在 0–{MAX_POINTS} 之间"
    if not 0 <= multiplier_percent <= MAX_MULTIPLIER_PERCENT:
        errors["multiplier_percent"] = "倍数须在 0–10 倍之间"
    for field, cap in (("daily_cap", daily_cap), ("monthly_cap", monthly_cap)):
        if cap is not None and not 1 <= cap <= MAX_POINTS:
            errors[field] = f"上限须在 1–{MAX_POINTS} 之间，不限请留空"
    if daily_cap is not None and monthly_cap is not None and daily_cap > monthly_cap:
        errors["daily_cap"] = "每日上限不能大于每月上限"
    try:
        clean_text(note, field="note", label="说明", max_length=200)
    except Invalid as exc:
        errors.update(exc.fields or {})
    if errors:
        raise Invalid(fields=errors)


async def create_rule(
    *,
    actor: User,
    event_type: str,
    points: int,
    multiplier_percent: int = 100,
    daily_cap: int | None = None,
    monthly_cap: int | None = None,
    effective_from: datetime | None = None,
    note: str = "",
) -> EarningRule:
    """A street admin's new version of an event type's rule, in force from now or later:
    awards already made keep the terms they were paid under."""
    await accounts_service.require_street_admin(actor)
    note = note.strip()
    _check_rule_values(
        event_type=event_type,
        points=points,
        multiplier_percent=multiplier_percent,
        daily_cap=daily_cap,
        monthly_cap=monthly_cap,
        note=note,
    )
    now = clock.now()
    if effective_from is not None and effective_from.tzinfo is None:
        raise Invalid(fields={"effective_from": "请带上时区"})
    check_moment(effective_from, field="effective_from")
    if effective_from is not None and effective_from < now:
        raise Invalid(fields={"effective_from": "生效时间不能早于现在：已发放的积分不会被改写"})
    try:
        async with in_transaction():
            rule = await EarningRule.create(
                event_type=event_type,
                points=points,
                multiplier_percent=multiplier_percent,
                daily_cap=daily_cap,
                monthly_cap=monthly_cap,
                effective_from=(effective_from or now).astimezone(UTC),
                note=note,
                created_by_id=actor.id,
                created_at=now,
            )
    except IntegrityError as exc:
        raise Conflict("该事项在这个时间已有一条规则", code="rule_exists") from exc
    log.info("points rule %s for %s added by user %s", rule.id, event_type, actor.id)
    return rule


async def withdraw_rule(*, actor: User, rule_id: int) -> None:
    """Remove a rule version that has not started yet (one that has is history and stays)."""
    await accounts_service.require_street_admin(actor)
    try:
        async with in_transaction():
            removed = await EarningRule.filter(id=rule_id, effective_from__gt=clock.now()).delete()
    except IntegrityError as exc:  # an award already points at it
        raise RuleInForce() from exc
    if removed:
        return
    if await EarningRule.exists(id=rule_id):
        raise RuleInForce()
    raise NotFound("规则不存在")


async def list_rules() -> list[EventRules]:
    """Every event type with its rule now, the versions scheduled later, and the past ones."""
    now = clock.now()
    rules = await EarningRule.all().order_by("event_type", "-effective_from")
    result = []
    for event in EVENT_TYPES.values():
        versions = [r for r in rules if r.event_type == event.key]
        started = [r for r in versions if r.effective_from <= now]
        current = _terms(started[0]) if started else RuleTerms(event.key, event.default_points)
        result.append(
            EventRules(
                event=event,
                current=current,
                upcoming=[r for r in reversed(versions) if r.effective_from > now],
                history=started[1:],
            )
        )
    return result


# --- staff adjustments ---


async def adjust_points(*, actor: User, user_id: int, delta: int, reason: str) -> PointsLedgerEntry:
    """A correction by staff of the user's community or a street admin, never below zero,
    and within the staff-adjustment rule's caps."""
    errors = {}
    if not 0 < abs(delta) <= MAX_ADJUSTMENT:
        errors["delta"] = f"调整的积分须在 ±1–{MAX_ADJUSTMENT} 之间"
    try:
        reason = clean_text(reason, field="reason", label="事由", min_length=2, max_length=200)
    except Invalid as exc:
        errors.update(exc.fields or {})
    if errors:
        raise Invalid(fields=errors)
    target = await User.get_or_none(id=user_id)
    if target is None:
        raise NotFound("用户不存在")
    await accounts_service.require_staff_of(actor, target.community_id)
    rule_id = None
    async with in_transaction():
        if delta > 0:
            now = clock.now()
            terms = await rule_terms(event_type=EVENT_STAFF_ADJUSTMENT, at=now)
            rule_id = terms.rule_id
            if await _claim_cap_room(user_id=user_id, terms=terms, amount=delta, at=now) < delta:
                raise CapReached("超过了每人每日或每月可调整的积分上限")
        entry = await _change_balance_in_tx(
            user_id=user_id,
            delta=delta,
            source_type=SOURCE_ADJUSTMENT,
            source_id=uuid.uuid4().hex,
            reason=reason,
            actor_id=actor.id,
            rule_id=rule_id,
        )
    assert entry is not None  # a fresh source id cannot have been recorded before
    log.info(
        "points adjusted by user %s: %+d (ledger entry %s)",
        actor.id,
        delta,
        entry.id,
        extra={"user_id": user_id},
    )
    return entry


async def _by_phone(actor: User, phone: str) -> User | None:
    # One number may be registered by several people (a family's shared phone). Among those
    # the staff member may act for, a choice would be a guess: they choose by number instead.
    query = User.filter(phone_index=blind_index(phone)).order_by("id")
    scope = await accounts_service.staff_community_ids(actor)
    mine = await (query if scope is None else query.filter(community_id__in=scope)).limit(
        PHONE_CANDIDATES + 1
    )
    if len(mine) > 1:
        named = [f"编号 {u.id}（{mask_name(u.nickname)}）" for u in mine[:PHONE_CANDIDATES]]
        more = "等" if len(mine) > PHONE_CANDIDATES else ""
        raise PhoneAmbiguous(
            f"这个手机号登记了多位居民：{'、'.join(named)}{more}，请改填其中一位的居民编号"
        )
    # Someone outside the staff member's communities is found, so that they are told why not.
    return mine[0] if mine else await query.first()


async def find_resident(*, actor: User, query: str) -> User:
    """The user a staff member means by an id or a phone number, if they may adjust them;
    a phone number several of their residents share is refused as ambiguous."""
    text = "".join(query.split()).removeprefix("+86")
    user = None
    if text.isdigit() and len(text) == 11:
        user = await _by_phone(actor, text)
    if user is None and text.isdigit() and len(text) <= 18:
        user = await User.get_or_none(id=int(text))
    if user is None:
        raise NotFound("没有找到这位居民，请核对手机号或编号")
    await accounts_service.require_staff_of(actor, user.community_id)
    return user


async def list_adjustments(
    *, actor: User, community_id: int | None, page: PageRequest
) -> Page[PointsLedgerEntry]:
    """Staff adjustments in a community (all of them for a street admin), newest first."""
    await accounts_service.require_staff_of(actor, community_id)
    query = PointsLedgerEntry.filter(source_type=SOURCE_ADJUSTMENT)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    return await paginate(query, page, descending=True)


# --- expiry ---


async def _expire_batch_in_tx(batch: PointsBatch) -> PointsLedgerEntry | None:
    amount, total = batch.remaining, batch.expired + batch.remaining
    try:
        async with in_transaction():
            if not await _move_balance(batch.user_id, -amount):
                raise _Undo()
            # Guarded on what was read: a second expirer, or a refund in between, finds a
            # different row and leaves it for the next run.
            zeroed = await PointsBatch.filter(
                id=batch.id, remaining=amount, expired=batch.expired
            ).update(remaining=0, expired=total)
            if zeroed != 1:
                raise _Undo()
            day = last_valid_day(batch.expires_at)
            return await _append_entry(
                user_id=batch.user_id,
                delta=-amount,
                source_type=SOURCE_EXPIRY,
                # The running total makes each expiry of this batch its own source, once.
                source_id=f"{batch.id}-{total}",
                reason=f"积分到期（有效期至 {day.year}年{day.month}月{day.day}日）",
            )
    except (_Undo, IntegrityError):
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
    horizon = _month_start(now.astimezone(local_zone()), 2).astimezone(UTC)
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
