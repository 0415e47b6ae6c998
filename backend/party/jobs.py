"""Scheduled party work (bot/jobs_party.py): the monthly service summary and check-ins left
open past the longest session. Each is safe to run twice or in parallel: a summary's outbox
dedupe key lets it through once per member and month, and a check-in expires by a guarded
UPDATE that only an open record passes."""

from __future__ import annotations

from datetime import date, timedelta

from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from backend.core.clock import clock, local_midnight, local_today
from backend.core.config import get_settings
from backend.core.outbox import enqueue
from backend.party.models import (
    PartyRegistration,
    ServiceRecord,
    ServiceRecordAudit,
    ServiceRecordDay,
)
from backend.party.views import PARTY_URL, hours


async def expire_stale_records(*, user_id: int | None = None) -> int:
    """Close check-ins left open longer than the longest session as expired (no minutes
    until staff correct them); safe to run anywhere, any number of times."""
    cutoff = clock.now() - timedelta(minutes=get_settings().party_session_max_minutes)
    stale = ServiceRecord.filter(status="open", started_at__lt=cutoff)
    if user_id is not None:
        stale = stale.filter(user_id=user_id)
    expired = 0
    for record_id in await stale.values_list("id", flat=True):
        async with in_transaction():
            changed = await ServiceRecord.filter(id=record_id, status="open").update(
                status="expired", open_key=None, updated_at=clock.now()
            )
            if changed:
                await ServiceRecordAudit.create(
                    record_id=record_id,
                    actor_id=None,
                    action="expired",
                    reason="签到后超过最长服务时长未签退",
                    before={"status": "open"},
                    after={"status": "expired"},
                    created_at=clock.now(),
                )
                expired += 1
    return expired


def _previous_month(today: date) -> tuple[date, date]:
    first_this = today.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    return last_prev.replace(day=1), last_prev


async def send_monthly_summaries(*, batch_size: int = 200) -> int:
    """Queue last month's service summary for every member approved before it ended; the
    dedupe key makes every run after the first a no-op, so it may run hourly anywhere."""
    first, last = _previous_month(local_today())
    month = f"{first:%Y-%m}"
    month_end = local_midnight(last + timedelta(days=1))
    queued = 0
    last_id = 0
    while True:
        batch = (
            await PartyRegistration.filter(
                id__gt=last_id, status="approved", approved_at__lt=month_end
            )
            .order_by("id")
            .limit(batch_size)
        )
        if not batch:
            return queued
        last_id = batch[-1].id
        totals = dict(
            await ServiceRecordDay.filter(
                user_id__in=[r.user_id for r in batch],
                service_date__gte=first,
                service_date__lte=last,
            )
            .annotate(total=Sum("minutes"))
            .group_by("user_id")
            .values_list("user_id", "total")
        )
        async with in_transaction():
            for registration in batch:
                served = int(totals.get(registration.user_id) or 0)
                body = (
                    f"{first.month} 月您参加党员志愿服务 {hours(served)} 小时，感谢您的奉献！"
                    if served
                    else f"{first.month} 月您还没有服务记录，欢迎到社区认领岗位、参与服务。"
                )
                await enqueue(
                    template_key="notice",
                    context={
                        "title": f"{first.month}月党员服务小结",
                        "body": body,
                        "summary": f"服务 {hours(served)} 小时",
                        "url": PARTY_URL + "/service",
                    },
                    dedupe_key=f"party-monthly:{registration.user_id}:{month}",
                    user_id=registration.user_id,
                )
                queued += 1
