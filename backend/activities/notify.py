"""What the activities domain tells people, through the outbox: a booker about their place,
staff about a filling class, everyone booked about a change or the draw's result.

Each message has a dedupe key, so a retried transaction or a second bot process sends it
once; the ones that go with a change are queued in the change's transaction.
"""

from __future__ import annotations

import math
from typing import Any

from backend.activities.models import CANCELLABLE_STATUSES, Activity, Booking
from backend.core.clock import to_local
from backend.core.outbox import enqueue
from backend.orgs.models import Community

# Share of seats booked at which an activity counts as in demand and staff are alerted.
DEMAND_SHARE = 0.8


def _booking_context(activity: Activity, status: str) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "activity_title": activity.title,
        "starts_at": activity.starts_at.isoformat(),
        "location": activity.location or "详见活动页面",
        "status": status,
    }


def notice_key(booking: Booking, event: str) -> str:
    return f"booking:{booking.id}:{event}"


async def tell_booker(booking: Booking, activity: Activity, status: str, event: str) -> None:
    await enqueue(
        template_key="booking",
        context=_booking_context(activity, status),
        dedupe_key=notice_key(booking, event),
        user_id=booking.user_id,
    )


async def tell_not_drawn(booking: Booking, activity: Activity) -> None:
    await enqueue(
        template_key="notice",
        context={
            "title": f"未中签：{activity.title}",
            "summary": "感谢参与，欢迎报名其他活动",
            "body": f"“{activity.title}”报名人数较多，经公开抽签本次未中签。",
            "url": f"/h5/activities/{activity.id}",
        },
        dedupe_key=notice_key(booking, "drawn"),
        user_id=booking.user_id,
    )


async def alert_staff_in_tx(activity: Activity, booked: int) -> None:
    """Tell the activity's author (and the community's WeCom robot) when `booked` reaches
    80% or 100% of the seats, once each."""
    thresholds = {math.ceil(activity.capacity * DEMAND_SHARE): 80, activity.capacity: 100}
    share = thresholds.get(booked)
    if share is None:
        return
    context = {
        "title": f"报名已达{share}%：{activity.title}",
        "summary": f"已报名 {booked}/{activity.capacity} 人",
        "body": f"活动“{activity.title}”已报名 {booked}/{activity.capacity} 人"
        + ("，名额已满。" if share == 100 else "。"),
        "url": f"/h5/activities/{activity.id}/attendance",
    }
    if activity.created_by_id is not None:
        await enqueue(
            template_key="notice",
            context=context,
            dedupe_key=f"activity:{activity.id}:fill{share}:user:{activity.created_by_id}",
            user_id=activity.created_by_id,
        )
    robot = await Community.get(id=activity.community_id).values_list("wecom_robot_key", flat=True)
    if robot:
        await enqueue(
            template_key="notice",
            context=context,
            dedupe_key=f"activity:{activity.id}:fill{share}:wecom",
            channel="wecom",
            recipient=robot,
        )


async def notify_change_in_tx(activity: Activity) -> None:
    """Tell everyone holding a place the new time and place, once per revision."""
    local = to_local(activity.starts_at)
    when = f"{local.month}月{local.day}日 {local:%H:%M}"
    place = activity.location or "详见活动页面"
    people = await Booking.filter(
        activity_id=activity.id, status__in=CANCELLABLE_STATUSES
    ).values_list("user_id", flat=True)
    for user_id in people:
        await enqueue(
            template_key="notice",
            context={
                "title": f"活动变更：{activity.title}",
                "summary": "时间或地点有调整，请查看",
                "body": f"“{activity.title}”调整为 {when}，地点：{place}。",
                "url": f"/h5/activities/{activity.id}",
            },
            dedupe_key=f"activity:{activity.id}:rev{activity.revision}:user:{user_id}",
            user_id=user_id,
        )
