"""Activity factories for tests: an open class by default, times relative to the frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts.models import User
from backend.activities import service
from backend.activities.models import Activity
from backend.activities.schemas import ActivityIn
from backend.core.clock import clock
from backend.orgs.models import Community
from tests.factories import make_community, make_user

# A Wednesday at 10:00 Shanghai time, mid-month, so a class three days later is the same month.
NOW = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)


def freeze(moment: datetime = NOW) -> datetime:
    clock.set(moment)
    return moment


def activity_fields(community: Community, **overrides: Any) -> dict[str, Any]:
    """API body of an activity open for booking now, starting in three days for an hour."""
    now = clock.now()
    starts = now + timedelta(days=3)
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
        "booking_opens_at": now - timedelta(hours=1),
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
    community: Community | None = None, *, staff: User | None = None, **overrides: Any
) -> Activity:
    community = community or await make_community()
    staff = staff or await make_user(community=community, roles=["staff"])
    view = await service.create_activity(
        actor=staff, data=ActivityIn(**activity_fields(community, **overrides))
    )
    return view.activity


async def residents(community: Community, n: int) -> list[User]:
    return [await make_user(community=community) for _ in range(n)]
