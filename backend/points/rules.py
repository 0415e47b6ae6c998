"""Earning rules: what an event pays, in versions that start now or later.

A rule prices awards by event type: points per unit, a multiplier, and caps per person per
local day and month, kept in tallies that are raised by guarded statements. A rule is
changed by adding a version that starts now or later, so history never changes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock, to_local
from backend.core.errors import Conflict, Invalid, NotFound
from backend.core.text import clean_text
from backend.points.exceptions import RuleInForce
from backend.points.ledger import (
    Undo,
    already_recorded,
    change_balance_in_tx,
    require_transaction,
)
from backend.points.models import EarningRule, EarningTally, PointsLedgerEntry
from backend.points.schemas import NOTE_MAX, RuleIn
from backend.points.views import EVENT_TYPES, EventRules, EventType, RuleTerms

log = logging.getLogger("linli.points")

MAX_POINTS = 100_000
MAX_MULTIPLIER_PERCENT = 1000
CAP_RETRIES = 5


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


async def claim_cap_room(*, user_id: int, terms: RuleTerms, amount: int, at: datetime) -> int:
    """Raise this user's day and month tallies by what the caps still allow; returns that."""
    local = to_local(at)
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
                        raise Undo()
            return grant
        except Undo:
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
    require_transaction("award_by_rule_in_tx")
    when = occurred_at or clock.now()
    terms = await rule_terms(event_type=event_type, at=when)
    amount = terms.amount_for(quantity, base_points)
    source_type = source_type or event_type
    if amount <= 0 or await already_recorded(user_id, source_type, source_id):
        return None
    text = reason or terms.label
    try:
        async with in_transaction():
            granted = await claim_cap_room(user_id=user_id, terms=terms, amount=amount, at=when)
            if granted < amount:
                text += "（已达上限）" if granted == 0 else f"（已达上限，按 {granted} 分计）"
            entry = await change_balance_in_tx(
                user_id=user_id,
                delta=granted,
                source_type=source_type,
                source_id=source_id,
                reason=text,
                actor_id=actor_id,
                rule_id=terms.rule_id,
            )
            if entry is None:
                raise Undo()  # paid meanwhile: the tallies must not count it twice
            return entry
    except Undo:
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
        clean_text(note, field="note", label="说明", max_length=NOTE_MAX)
    except Invalid as exc:
        errors.update(exc.fields or {})
    if errors:
        raise Invalid(fields=errors)


async def create_rule(*, actor: User, data: RuleIn) -> EarningRule:
    """A street admin's new version of an event type's rule, in force from now or later:
    awards already made keep the terms they were paid under."""
    await accounts_service.require_street_admin(actor)
    note = data.note.strip()
    _check_rule_values(
        event_type=data.event_type,
        points=data.points,
        multiplier_percent=data.multiplier_percent,
        daily_cap=data.daily_cap,
        monthly_cap=data.monthly_cap,
        note=note,
    )
    now = clock.now()
    # The model has bounded the moment and made sure it carries its time zone.
    effective_from = data.effective_from
    if effective_from is not None and effective_from < now:
        raise Invalid(fields={"effective_from": "生效时间不能早于现在：已发放的积分不会被改写"})
    try:
        async with in_transaction():
            rule = await EarningRule.create(
                event_type=data.event_type,
                points=data.points,
                multiplier_percent=data.multiplier_percent,
                daily_cap=data.daily_cap,
                monthly_cap=data.monthly_cap,
                effective_from=(effective_from or now).astimezone(UTC),
                note=note,
                created_by_id=actor.id,
                created_at=now,
            )
    except IntegrityError as exc:
        raise Conflict("该事项在这个时间已有一条规则", code="rule_exists") from exc
    log.info("points rule %s for %s added by user %s", rule.id, data.event_type, actor.id)
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
