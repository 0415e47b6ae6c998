"""The transactional outbox: services record what to tell whom; the bot sends it.

Call `enqueue` inside the service's transaction, so the message exists exactly when
the change it reports does. The dedupe key makes a repeated enqueue a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from backend.core.clock import clock
from backend.core.models import OutboxMessage

# channel "user": the bot picks the best channel the recipient has when it sends
# (subscribe message while consents last, else official-account template message).
CHANNELS = ("user", "subscribe", "template", "wecom")


async def enqueue(
    *,
    template_key: str,
    context: dict[str, Any],
    dedupe_key: str,
    user_id: int | None = None,
    channel: str = "user",
    recipient: str | None = None,
    available_at: datetime | None = None,
) -> None:
    """Add one message to the outbox in the caller's transaction; duplicates are ignored."""
    await enqueue_many(
        [
            {
                "template_key": template_key,
                "context": context,
                "dedupe_key": dedupe_key,
                "user_id": user_id,
                "channel": channel,
                "recipient": recipient,
                "available_at": available_at,
            }
        ]
    )


async def enqueue_many(messages: Iterable[dict[str, Any]]) -> None:
    """Add messages (each given by `enqueue`'s keyword arguments) with one INSERT in the
    caller's transaction; duplicates are ignored. For fan-outs of many recipients."""
    rows = []
    for message in messages:
        channel = message.get("channel", "user")
        if channel not in CHANNELS:
            raise ValueError(f"unknown outbox channel {channel!r}")
        rows.append(
            OutboxMessage(
                channel=channel,
                template_key=message["template_key"],
                user_id=message.get("user_id"),
                recipient=message.get("recipient"),
                context=message["context"],
                dedupe_key=message["dedupe_key"],
                status="pending",
                # UTC: SQLite compares datetimes as text, and the relay compares with UTC.
                available_at=(message.get("available_at") or clock.now()).astimezone(UTC),
            )
        )
    if rows:
        # ON CONFLICT DO NOTHING: a failed INSERT would abort the caller's PostgreSQL transaction.
        await OutboxMessage.bulk_create(rows, ignore_conflicts=True)
