"""The subscribe-message consents and remembered refusals the bot spends and records.

A consent is WeChat's "one acceptance = one message" for mini-program subscribe messages.
The count here only ever changes by one guarded statement, so two bot processes can
never spend the same consent.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.core.clock import clock
from backend.core.db import is_postgres
from backend.core.errors import Invalid
from backend.notices.models import (
    MAX_CONSENTS_PER_CALL,
    TEMPLATE_KEYS,
    DeliveryRefusal,
    SubscriptionConsent,
    SubscriptionHold,
)

SUBSCRIBE_CHANNEL = "subscribe"


def _check_template_key(template_key: str) -> None:
    if template_key not in TEMPLATE_KEYS:
        raise Invalid("未知的消息模板", fields={"template_key": "取值不在允许范围内"})


async def record_consent(*, user_id: int, template_key: str, accepted: int) -> int:
    """Add `accepted` consents (race-safe upsert, one guarded increment) and lift an earlier
    subscribe refusal of that template; returns the consents left."""
    _check_template_key(template_key)
    if not 1 <= accepted <= MAX_CONSENTS_PER_CALL:
        raise Invalid(fields={"accepted": f"须在 1 到 {MAX_CONSENTS_PER_CALL} 之间"})
    async with in_transaction():
        # ON CONFLICT DO NOTHING: two first consents at once both end in the increment below.
        await SubscriptionConsent.bulk_create(
            [SubscriptionConsent(user_id=user_id, template_key=template_key, remaining=0)],
            ignore_conflicts=True,
        )
        await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
            remaining=F("remaining") + accepted, updated_at=clock.now()
        )
        # WeChat answers 43101 for a subscribe message when no acceptance is left, so a fresh
        # acceptance is the user saying yes again.
        await DeliveryRefusal.filter(
            user_id=user_id, channel=SUBSCRIBE_CHANNEL, template_key=template_key
        ).delete()
        consent = await SubscriptionConsent.get(user_id=user_id, template_key=template_key)
    return consent.remaining


async def consents_left(*, user_id: int, template_key: str) -> int:
    """How many subscribe messages of this template the user may still receive."""
    consent = await SubscriptionConsent.get_or_none(user_id=user_id, template_key=template_key)
    return consent.remaining if consent else 0


async def spend_consent(*, user_id: int, template_key: str, hold_for: int | None = None) -> bool:
    """Take one consent if one is left, never below zero (one guarded statement). With
    `hold_for` (an outbox id) the consent is held for that message: asking again for the
    same message answers True without taking a second one."""
    if hold_for is not None:
        return hold_for in await spend_consents(wanted=[(hold_for, user_id, template_key)])
    taken = await SubscriptionConsent.filter(
        user_id=user_id, template_key=template_key, remaining__gt=0
    ).update(remaining=F("remaining") - 1, updated_at=clock.now())
    return taken == 1


# Takes one consent from each listed user who has one left and says whose it took: one
# guarded statement for many users (RETURNING works on PostgreSQL and SQLite >= 3.35).
_TAKE_CONSENTS = (
    "UPDATE subscription_consent SET remaining = remaining - 1, updated_at = {}"
    " WHERE template_key = {} AND remaining > 0 AND user_id IN ({})"
    " RETURNING user_id"
)


def _take_consents_sql(users: int) -> str:
    marks = [f"${n}" for n in range(1, users + 3)] if is_postgres() else ["?"] * (users + 2)
    return _TAKE_CONSENTS.format(marks[0], marks[1], ", ".join(marks[2:]))


async def spend_consents(*, wanted: Iterable[tuple[int, int, str]]) -> set[int]:
    """For each (outbox id, user id, template key), hold one consent for that message: the
    one it holds already, else one taken by a guarded statement while the user has one left.
    Returns the outbox ids holding a consent. A user with two messages in the list spends
    two consents or, with one left, gets the first message only."""
    wanted = list(wanted)
    if not wanted:
        return set()
    held = set(
        await SubscriptionHold.filter(outbox_id__in=[w[0] for w in wanted]).values_list(
            "outbox_id", flat=True
        )
    )
    todo = [w for w in wanted if w[0] not in held]
    while todo:
        # The statement takes one consent per user, so each round has each user once.
        this_round: dict[tuple[int, str], tuple[int, int, str]] = {}
        later = []
        for item in todo:
            key = (item[1], item[2])
            if key in this_round:
                later.append(item)
            else:
                this_round[key] = item
        won: set[tuple[int, str]] = set()
        async with in_transaction() as connection:
            for template in sorted({template for _, template in this_round}):
                items = [item for (_, t), item in this_round.items() if t == template]
                rows = await connection.execute_query_dict(
                    _take_consents_sql(len(items)), [clock.now(), template, *(i[1] for i in items)]
                )
                taken = {row["user_id"] for row in rows}
                winners = [item for item in items if item[1] in taken]
                if not winners:
                    continue
                # A second relay holding the same message fails on the unique outbox id,
                # and the rollback gives back what this one took.
                await SubscriptionHold.bulk_create(
                    [
                        SubscriptionHold(outbox_id=o, user_id=u, template_key=t)
                        for o, u, t in winners
                    ]
                )
                held.update(item[0] for item in winners)
                won.update((item[1], item[2]) for item in winners)
        # A user who had no consent left for the first message has none for the next.
        todo = [item for item in later if (item[1], item[2]) in won]
    return held


async def return_consent(*, user_id: int, template_key: str, hold_for: int | None = None) -> None:
    """Give back a consent taken for a message WeChat did not deliver (once per held message)."""
    async with in_transaction():
        if hold_for is not None:
            released = await SubscriptionHold.filter(outbox_id=hold_for).delete()
            if not released:
                return
        await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
            remaining=F("remaining") + 1, updated_at=clock.now()
        )


async def record_refusal(*, user_id: int, channel: str, template_key: str) -> None:
    """Remember that WeChat refused this template on this channel for the user (idempotent)."""
    async with in_transaction():
        await DeliveryRefusal.bulk_create(
            [DeliveryRefusal(user_id=user_id, channel=channel, template_key=template_key)],
            ignore_conflicts=True,
        )
        if channel == SUBSCRIBE_CHANNEL:
            # WeChat holds no acceptance for us any more: our count was stale.
            await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
                remaining=0, updated_at=clock.now()
            )


async def refusals(*, user_ids: Iterable[int]) -> set[tuple[int, str, str]]:
    """(user id, channel, template key) of every refusal the given users made."""
    rows = await DeliveryRefusal.filter(user_id__in=list(user_ids)).values_list(
        "user_id", "channel", "template_key"
    )
    return set(rows)


async def is_refused(*, user_id: int, channel: str, template_key: str) -> bool:
    """Whether WeChat once refused this template on this channel for the user."""
    return await DeliveryRefusal.exists(user_id=user_id, channel=channel, template_key=template_key)
