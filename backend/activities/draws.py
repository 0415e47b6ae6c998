"""Draw mode: entries wait for booking to close, then one public draw hands out the seats and
the waitlist in an order anyone can recompute from the seed (published, as its SHA-256,
before the draw; itself after it)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.activities import notify
from backend.activities.access import load_for_staff
from backend.activities.bookings import release_quotas_in_tx
from backend.activities.models import Activity, Booking
from backend.activities.views import DrawEntry, DrawRecord
from backend.core.clock import clock
from backend.core.security import mask_name

log = logging.getLogger("linli.activities")


def draw_ticket(seed: str, user_id: int) -> str:
    """An entry's lottery ticket: anyone with the seed can recompute and sort them."""
    return hashlib.sha256(f"{seed}:{user_id}".encode()).hexdigest()


def draw_order(seed: str, user_ids: Iterable[int]) -> list[int]:
    """The drawn order of `user_ids` for `seed` (same seed and entrants, same order)."""
    return sorted(set(user_ids), key=lambda uid: (draw_ticket(seed, uid), uid))


async def draw_activity(*, activity_id: int) -> bool:
    """Run the draw of a closed draw-mode activity once: seats then waitlist in drawn order,
    the rest not drawn, everyone told. False when there was nothing to draw (yet)."""
    now = clock.now()
    async with in_transaction():
        claimed = await Activity.filter(
            id=activity_id,
            mode="draw",
            status="published",
            drawn_at=None,
            booking_closes_at__lte=now,
        ).update(drawn_at=now)
        if not claimed:
            return False
        activity = await Activity.get(id=activity_id)
        entries = {
            b.user_id: b for b in await Booking.filter(activity_id=activity_id, status="entered")
        }
        order = draw_order(activity.draw_seed or "", entries)
        seats, waitlist = activity.capacity, activity.waitlist_capacity
        losers = [entries[uid] for uid in order[seats + waitlist :]]
        await release_quotas_in_tx(losers)
        for rank, user_id in enumerate(order, start=1):
            booking = entries[user_id]
            if rank <= seats:
                await Booking.filter(id=booking.id).update(
                    status="confirmed", draw_rank=rank, confirmed_at=now
                )
                await notify.tell_booker(booking, activity, "confirmed", "drawn")
            elif rank <= seats + waitlist:
                await Booking.filter(id=booking.id).update(
                    status="waitlisted", draw_rank=rank, waitlist_ticket=rank - seats
                )
                await notify.tell_booker(booking, activity, "waitlisted", "drawn")
            else:
                await Booking.filter(id=booking.id).update(
                    status="not_drawn", draw_rank=rank, live_key=None, quota_key=None
                )
                await notify.tell_not_drawn(booking, activity)
        confirmed = min(seats, len(order))
        waitlisted = min(waitlist, max(0, len(order) - seats))
        await Activity.filter(id=activity_id).update(
            booked=confirmed,
            waitlisted=waitlisted,
            waitlist_issued=waitlisted,
            entries=0,
        )
    log.info("activity %s drawn: %s entries", activity_id, len(order))
    return True


async def run_due_draws() -> int:
    """Draw every draw-mode activity whose booking has closed (safe to run anywhere, twice)."""
    due = await Activity.filter(
        mode="draw", status="published", drawn_at=None, booking_closes_at__lte=clock.now()
    ).values_list("id", flat=True)
    drawn = 0
    for activity_id in due:
        drawn += await draw_activity(activity_id=activity_id)
    return drawn


async def get_draw(*, actor: User, activity_id: int) -> DrawRecord:
    """Staff: the draw's seed hash, and after the draw the seed and the ordered entries."""
    activity = await load_for_staff(actor, activity_id)
    entries: list[DrawEntry] = []
    if activity.drawn_at is not None:
        drawn = await Booking.filter(activity_id=activity_id, draw_rank__not_isnull=True).order_by(
            "draw_rank"
        )
        users = {u.id: u for u in await User.filter(id__in={b.user_id for b in drawn})}
        entries = [
            DrawEntry(
                rank=b.draw_rank,
                booking_id=b.id,
                user_id=b.user_id,
                nickname=mask_name(users[b.user_id].nickname),
                ticket=draw_ticket(activity.draw_seed or "", b.user_id),
                status=b.status,
            )
            for b in drawn
        ]
    return DrawRecord(
        activity_id=activity.id,
        seed_hash=activity.draw_seed_hash,
        seed=activity.draw_seed if activity.drawn_at else None,
        drawn_at=activity.drawn_at,
        entries=entries,
    )
