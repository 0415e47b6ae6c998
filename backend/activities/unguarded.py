"""TEST ONLY: the read-check-write seat, for the control case of the booking race test.

With LINLI_TEST_UNGUARDED_BOOKING=1 (honoured only when LINLI_ENV=dev, refused in prod)
bookings.py asks `backend.core.unguarded.enabled("booking")` once and takes the seat here:
it reads the seats booked, checks them against the capacity and writes back what it read
plus one, instead of the one guarded UPDATE. The control test runs its burst against this
and asserts that the class is oversold.
"""

from __future__ import annotations

import asyncio

from tortoise.expressions import Q

from backend.activities.models import Activity


async def take_seat_in_tx(activity_id: int, open_now: Q) -> int | None:
    """The seats booked after taking one, or None when the read said there was none."""
    row = await Activity.filter(open_now, id=activity_id).first()
    if row is None or row.booked >= row.capacity:
        return None
    # Widens the window between the read and the write, so the control case does not
    # depend on scheduling luck.
    await asyncio.sleep(0.005)
    await Activity.filter(id=activity_id).update(booked=row.booked + 1)
    return row.booked + 1
