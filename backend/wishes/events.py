"""A wish's history rows and the notices each transition sends, written in the
transition's own transaction."""

from __future__ import annotations

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.outbox import enqueue
from backend.wishes.models import Wish, WishEvent


async def record(
    wish: Wish,
    *,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: User | None,
    role: str,
    note: str = "",
) -> WishEvent:
    return await WishEvent.create(
        wish_id=wish.id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.id if actor else None,
        actor_role=role,
        note=note[:512],
        created_at=clock.now(),
    )


async def notify(wish: Wish, event: WishEvent, *, user_id: int, status: str, note: str) -> None:
    """Tell `user_id` of `event`; keyed by the event, so a retried enqueue adds nothing."""
    await enqueue(
        template_key="wish",
        context={"wish_id": wish.id, "wish_title": wish.title, "status": status, "note": note},
        dedupe_key=f"wish:{wish.id}:{event.id}:{user_id}",
        user_id=user_id,
    )
