"""The reminder an hour before an activity, to everyone holding a seat, once each."""

from __future__ import annotations

from datetime import timedelta

from tortoise.transactions import in_transaction

from backend.activities.models import Booking
from backend.core.clock import clock
from backend.core.outbox import enqueue

REMINDER_BEFORE = timedelta(hours=1)


async def send_reminders() -> int:
    """Remind every confirmed booker once, within the hour before the start; returns how many."""
    now = clock.now()
    due = await Booking.filter(
        status="confirmed",
        reminded_at=None,
        activity__status="published",
        activity__starts_at__gt=now,
        activity__starts_at__lte=now + REMINDER_BEFORE,
    ).select_related("activity")
    sent = 0
    for booking in due:
        activity = booking.activity
        async with in_transaction():
            if not await Booking.filter(id=booking.id, reminded_at=None).update(reminded_at=now):
                continue  # another bot process got there first
            await enqueue(
                template_key="reminder",
                context={
                    "activity_id": activity.id,
                    "activity_title": activity.title,
                    "starts_at": activity.starts_at.isoformat(),
                    "location": activity.location or "详见活动页面",
                },
                dedupe_key=f"booking:{booking.id}:reminder",
                user_id=booking.user_id,
            )
        sent += 1
    return sent
