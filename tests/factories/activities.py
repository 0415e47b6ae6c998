"""Activity factories: an open class by default, times relative to the frozen clock, made
through the activities service so every activity is one staff could publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts.models import User
from backend.activities import catalogue
from backend.activities.models import Activity
from backend.activities.schemas import ActivityIn
from backend.core.clock import clock
from backend.orgs.models import Community
from tests.factories import make_community, make_staff, make_user

# A Wednesday at 10:00 Shanghai time, mid-month, so a class three days later is the same month.
NOW = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)


def freeze(moment: datetime = NOW) -> datetime:
    clock.set(moment)
    return moment


def activity_fields(
    community: Community, *, starts_in: timedelta = timedelta(days=3), **overrides: Any
) -> dict[str, Any]:
    """API body of an activity open for booking now, starting `starts_in` from now for an
    hour (one that already started opened for booking the day before it)."""
    now = clock.now()
    starts = now + starts_in
    body = {
        "community_id": community.id,
        "title": "舞韵瑜伽",
        "category": "午间一小时",
        "description": "午休时间的舒展瑜伽课",
        "location": "梅龙镇广场 5 楼活动室",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=1),
        "capacity": 2,
        "waitlist_capacity": 1,
        "booking_opens_at": min(now - timedelta(hours=1), starts - timedelta(days=1)),
        "booking_closes_at": starts - timedelta(hours=2),
        "cancel_deadline": starts - timedelta(hours=4),
        "audience": ["resident"],
        "points": 5,
    }
    body.update(overrides)
    return body


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}


async def make_activity(
    community: Community | None = None,
    *,
    staff: User | None = None,
    starts_in: timedelta = timedelta(days=3),
    cancelled: bool = False,
    **overrides: Any,
) -> Activity:
    """An activity published by `staff` (a new staff member of `community` by default);
    `cancelled` cancels it right after."""
    community = community or await make_community()
    staff = staff or await make_staff(community)
    view = await catalogue.create_activity(
        actor=staff,
        data=ActivityIn(**activity_fields(community, starts_in=starts_in, **overrides)),
    )
    if cancelled:
        view = await catalogue.cancel_activity(actor=staff, activity_id=view.activity.id)
    return view.activity


async def residents(community: Community, n: int) -> list[User]:
    return [await make_user(community=community) for _ in range(n)]
