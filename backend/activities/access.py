"""Finding an activity or a booking by its id, and whether the actor may manage it: the
first step of every staff verb (a missing one is NotFound, another community's Forbidden)."""

from __future__ import annotations

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities.models import Activity, Booking
from backend.core.errors import NotFound
from backend.core.ids import may_exist


async def load_activity(activity_id: int) -> Activity:
    activity = await Activity.get_or_none(id=activity_id) if may_exist(activity_id) else None
    if activity is None:
        raise NotFound("活动不存在")
    return activity


async def load_for_staff(actor: User, activity_id: int) -> Activity:
    """The activity, when `actor` is staff of its community."""
    activity = await load_activity(activity_id)
    await accounts_service.require_staff_of(actor, activity.community_id)
    return activity


async def load_booking_for_staff(actor: User, booking_id: int) -> tuple[Booking, Activity]:
    """The booking and its activity, when `actor` is staff of the activity's community."""
    booking = await Booking.get_or_none(id=booking_id) if may_exist(booking_id) else None
    if booking is None:
        raise NotFound("报名记录不存在")
    return booking, await load_for_staff(actor, booking.activity_id)
