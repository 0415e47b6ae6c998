"""Activities themselves: staff publish, edit and cancel them; anyone reads one or the list.

The request models (schemas.py) hold every field's shape and limit; what is checked here
needs the database or the other fields: the order of the times, the buildings and
communities named, the places already taken.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import gate, notify
from backend.activities.access import load_activity, load_for_staff
from backend.activities.bookings import promote_in_tx, release_quotas_in_tx
from backend.activities.exceptions import ActivityCancelled, BookingsExist
from backend.activities.models import CANCELLABLE_STATUSES, Activity, ActivityBuilding, Booking
from backend.activities.schemas import ActivityIn, ActivityPatch
from backend.activities.views import AUDIENCE_FIELDS, ActivityView, activity_views
from backend.core.clock import clock
from backend.core.errors import Invalid
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.text import clean_text
from backend.orgs.models import Building, Community

log = logging.getLogger("linli.activities")

MUTABLE_FIELDS = (
    "title",
    "category",
    "description",
    "location",
    "starts_at",
    "ends_at",
    "capacity",
    "waitlist_capacity",
    "booking_opens_at",
    "booking_closes_at",
    "cancel_deadline",
    "points",
    "mode",
    "high_demand",
)
TIME_FIELDS = ("starts_at", "ends_at", "booking_opens_at", "booking_closes_at", "cancel_deadline")
# A change to one of these is news for everyone booked.
NEWSWORTHY_FIELDS = ("starts_at", "ends_at", "location")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _check_times(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "结束时间须晚于开始时间"
    if values["booking_closes_at"] <= values["booking_opens_at"]:
        errors["booking_closes_at"] = "报名截止须晚于报名开始"
    if values["booking_closes_at"] > values["starts_at"]:
        errors["booking_closes_at"] = "报名须在活动开始前截止"
    if values["cancel_deadline"] > values["starts_at"]:
        errors["cancel_deadline"] = "取消截止须不晚于活动开始"
    if errors:
        raise Invalid(fields=errors)


async def _check_targets(building_ids: Iterable[int], community_ids: Iterable[int]) -> None:
    errors: dict[str, str] = {}
    building_ids, community_ids = set(building_ids), set(community_ids)
    if building_ids and await Building.filter(id__in=building_ids).count() != len(building_ids):
        errors["building_ids"] = "楼宇不存在"
    if community_ids and await Community.filter(id__in=community_ids).count() != len(community_ids):
        errors["community_ids"] = "社区不存在"
    if errors:
        raise Invalid(fields=errors)


def _audience_columns(audience: Iterable[str]) -> dict[str, bool]:
    chosen = set(audience)
    return {column: key in chosen for key, column in AUDIENCE_FIELDS.items()}


def _new_seed() -> tuple[str, str]:
    seed = secrets.token_hex(16)
    return seed, hashlib.sha256(seed.encode()).hexdigest()


async def _set_buildings(activity_id: int, building_ids: list[int]) -> None:
    await ActivityBuilding.filter(activity_id=activity_id).delete()
    await ActivityBuilding.bulk_create(
        [ActivityBuilding(activity_id=activity_id, building_id=b) for b in building_ids]
    )


# --- staff: create, edit, cancel ---


async def create_activity(*, actor: User, data: ActivityIn) -> ActivityView:
    """Publish an activity in a community the actor is staff of (times checked for order)."""
    if not await Community.exists(id=data.community_id):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, data.community_id)
    values = {f: getattr(data, f) for f in MUTABLE_FIELDS}
    for field in TIME_FIELDS:
        values[field] = _utc(values[field])
    _check_times(values)
    building_ids, community_ids = sorted(set(data.building_ids)), sorted(set(data.community_ids))
    await _check_targets(building_ids, community_ids)
    seed, seed_hash = _new_seed() if data.mode == "draw" else (None, None)
    now = clock.now()
    async with in_transaction():
        activity = await Activity.create(
            **values,
            **_audience_columns(data.audience),
            building_ids=building_ids,
            community_ids=community_ids,
            community_id=data.community_id,
            draw_seed=seed,
            draw_seed_hash=seed_hash,
            created_by_id=actor.id,
            created_at=now,
            updated_at=now,
        )
        await _set_buildings(activity.id, building_ids)
    log.info("activity %s created by user %s", activity.id, actor.id)
    return ActivityView.of(activity)


async def update_activity(*, actor: User, activity_id: int, patch: ActivityPatch) -> ActivityView:
    """Change an activity: never below the places already taken, new seats go to the waitlist
    in order, and a change of time or place tells everyone booked once."""
    changes = patch.model_dump(exclude_unset=True)
    await load_for_staff(actor, activity_id)
    audience = changes.pop("audience", None)
    missing = [k for k, v in changes.items() if v is None]
    if missing:
        raise Invalid(fields=dict.fromkeys(missing, "不能为空"))
    for field in TIME_FIELDS:
        if field in changes:
            changes[field] = _utc(changes[field])
    for field in ("building_ids", "community_ids"):
        if field in changes:
            changes[field] = sorted(set(changes[field]))
    await _check_targets(changes.get("building_ids", ()), changes.get("community_ids", ()))
    now = clock.now()
    async with in_transaction():
        # NO KEY: new bookings' foreign-key checks (KEY SHARE) need not wait for an edit.
        activity = await Activity.filter(id=activity_id).select_for_update(no_key=True).get()
        if activity.status != "published":
            raise ActivityCancelled("活动已取消，不能再修改")
        merged = {f: changes.get(f, getattr(activity, f)) for f in MUTABLE_FIELDS}
        _check_times(merged)
        errors: dict[str, str] = {}
        if merged["capacity"] < activity.booked:
            errors["capacity"] = f"已有 {activity.booked} 人报名成功，名额不能少于此数"
        if merged["waitlist_capacity"] < activity.waitlisted:
            errors["waitlist_capacity"] = f"已有 {activity.waitlisted} 人候补，候补名额不能少于此数"
        if errors:
            raise Invalid(fields=errors)
        if merged["mode"] != activity.mode:
            if activity.booked or activity.waitlisted or activity.entries:
                raise BookingsExist()
            if merged["mode"] == "draw":
                changes["draw_seed"], changes["draw_seed_hash"] = _new_seed()
        newsworthy = any(
            f in changes and changes[f] != getattr(activity, f) for f in NEWSWORTHY_FIELDS
        )
        values = dict(changes, updated_at=now)
        if audience is not None:
            values.update(_audience_columns(audience))
        if newsworthy:
            values["revision"] = F("revision") + 1
        await Activity.filter(id=activity_id).update(**values)
        if "building_ids" in changes:
            await _set_buildings(activity_id, changes["building_ids"])
        activity = await Activity.get(id=activity_id)
        if newsworthy:
            await notify.notify_change_in_tx(activity)
        if activity.mode == "first_come" or activity.drawn_at is not None:
            await promote_in_tx(activity_id, now)
    await gate.forget(activity_id)
    return ActivityView.of(await Activity.get(id=activity_id))


async def cancel_activity(*, actor: User, activity_id: int, reason: str = "") -> ActivityView:
    """Cancel an activity: every live booking is cancelled and its person told, exactly once."""
    await load_for_staff(actor, activity_id)
    reason = clean_text(reason, field="reason", label="取消原因", max_length=200)
    now = clock.now()
    async with in_transaction():
        changed = await Activity.filter(id=activity_id, status="published").update(
            status="cancelled", cancel_reason=reason, updated_at=now
        )
        if changed:
            # The row lock is held: every booking that took a place has committed.
            activity = await Activity.get(id=activity_id)
            live = await Booking.filter(
                activity_id=activity_id, status__in=CANCELLABLE_STATUSES
            ).order_by("user_id")
            await release_quotas_in_tx(live)
            await Booking.filter(id__in=[b.id for b in live]).update(
                status="cancelled", live_key=None, quota_key=None, cancelled_at=now
            )
            for booking in live:
                await notify.tell_booker(booking, activity, "cancelled", "activity-cancelled")
    await gate.forget(activity_id)
    return ActivityView.of(await Activity.get(id=activity_id))


# --- reading ---


async def get_activity(*, activity_id: int) -> ActivityView:
    """One activity as the public sees it (NotFound otherwise)."""
    return ActivityView.of(await load_activity(activity_id))


async def list_activities(
    *,
    page: PageRequest,
    community_id: int | None = None,
    upcoming: bool = False,
    category: str | None = None,
    building_id: int | None = None,
) -> Page[ActivityView]:
    """Activities in id order; `upcoming` keeps published ones not yet over, `building_id`
    those open to that building's office workers."""
    query = Activity.all()
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if upcoming:
        query = query.filter(status="published", ends_at__gt=clock.now())
    if category is not None:
        query = query.filter(category=category)
    if building_id is not None:
        limited = Subquery(ActivityBuilding.all().values("activity_id"))
        listed = Subquery(ActivityBuilding.filter(building_id=building_id).values("activity_id"))
        query = query.filter(for_workers=True).filter(Q(id__in=listed) | ~Q(id__in=limited))
    result = await paginate(query, page)
    return Page(items=activity_views(result.items), next_cursor=result.next_cursor)
