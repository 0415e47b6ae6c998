"""Service records: check-in and check-out at a post by its rotating code, minutes credited
per local day under the day cap (points once), staff's offline records and corrections
(audited), and a member's own service."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from tortoise.exceptions import IntegrityError
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import checkin
from backend.core.clock import clock, local_zone
from backend.core.config import get_settings
from backend.core.errors import Conflict, Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.pagination import Page, PageRequest, paginate
from backend.orgs.models import Community
from backend.party.exceptions import (
    AlreadyCheckedIn,
    NotCheckedIn,
    NotPartyMember,
    NotYourPost,
    PostOffHours,
)
from backend.party.hours import current_term, minutes_sum, split_by_local_day
from backend.party.jobs import expire_stale_records
from backend.party.models import (
    PartyRegistration,
    PostAssignment,
    ServicePost,
    ServiceRecord,
    ServiceRecordAudit,
    ServiceRecordDay,
)
from backend.party.names import post_titles
from backend.party.posts import get_post, get_post_for_staff
from backend.party.schemas import CorrectionIn, OfflineRecordIn
from backend.party.views import PARTY_URL, CheckinCode, MyService, hours, opening_hours
from backend.points import rules as points_rules

POINTS_SOURCE = "party_service"


def post_subject(post_id: int) -> str:
    """The subject of a post's rotating check-in code (backend.core.checkin)."""
    return f"post:{post_id}"


def checkin_url(post_id: int, code: str) -> str:
    """The link the QR code carries: the member's check-in page with the code filled in."""
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}{PARTY_URL}/checkin?{urlencode({'post': post_id, 'code': code})}"


async def checkin_code(*, actor: User, post_id: int) -> CheckinCode:
    """The post's current rotating check-in code (staff of its community show it as a QR)."""
    post = await get_post_for_staff(actor=actor, post_id=post_id)
    code, expires_at = checkin.current_code(subject=post_subject(post.id))
    return CheckinCode(code=code, expires_at=expires_at, url=checkin_url(post.id, code))


async def _may_serve_at(user: User, post: ServicePost) -> None:
    if not await PartyRegistration.exists(
        active_key=f"u{user.id}", community_id=post.community_id, status="approved"
    ):
        raise NotPartyMember()
    if post.kind == "post" and not await PostAssignment.exists(
        user_id=user.id, post_id=post.id, status="active"
    ):
        raise NotYourPost()


async def _verify(user: User, post: ServicePost, code: str) -> None:
    await checkin.verify_code_for(subject=post_subject(post.id), user_id=user.id, code=code or "")


def _check_open(post: ServicePost, now: datetime) -> None:
    local = now.astimezone(local_zone())
    if not post.open_from <= local.hour * 60 + local.minute < post.open_until:
        raise PostOffHours(f"本岗位服务时间为 {opening_hours(post)}，请在服务时间内签到")


async def check_in(*, user: User, post_id: int, code: str) -> ServiceRecord:
    """Start a service record at a post (its holder) or task (any approved member of its
    community) with the post's current code, within its service hours; one open check-in
    per person (unique key); repeated wrong codes lock the person out for a while."""
    post = await get_post(post_id=post_id)
    _check_open(post, clock.now())
    await _verify(user, post, code)
    await _may_serve_at(user, post)
    await expire_stale_records(user_id=user.id)
    now = clock.now()
    try:
        async with in_transaction():
            return await ServiceRecord.create(
                user_id=user.id,
                community_id=post.community_id,
                post_id=post.id,
                task=post.title if post.kind == "task" else "",
                source="qr",
                status="open",
                open_key=f"u{user.id}",
                started_at=now,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError as exc:
        raise AlreadyCheckedIn() from exc


async def check_out(*, user: User, post_id: int, code: str) -> ServiceRecord:
    """End the user's open record at this post with its current code: minutes per local
    day (capped), points once. A check-in older than the longest session expires instead."""
    post = await get_post(post_id=post_id)
    await _verify(user, post, code)
    if await expire_stale_records(user_id=user.id):
        record = await ServiceRecord.filter(user_id=user.id, status="expired").order_by("-id")
        return record[0]
    now = clock.now()
    async with in_transaction():
        record = await ServiceRecord.get_or_none(
            open_key=f"u{user.id}", post_id=post.id, status="open"
        )
        if record is None:
            raise NotCheckedIn()
        changed = await ServiceRecord.filter(id=record.id, status="open").update(
            status="closed", open_key=None, ended_at=now, updated_at=now
        )
        if not changed:
            raise NotCheckedIn()
        return await _credit_in_tx(record_id=record.id)


async def _credit_in_tx(*, record_id: int) -> ServiceRecord:
    """(Re)compute a closed record's minutes per local day under the day cap and pay its
    points once. The member's user row is locked first: their records credit one by one."""
    settings = get_settings()
    record = await ServiceRecord.get(id=record_id)
    await User.filter(id=record.user_id).select_for_update().first()
    await ServiceRecordDay.filter(record_id=record.id).delete()
    credited = 0
    raw = 0
    if record.status == "closed" and record.ended_at is not None:
        for day, minutes in split_by_local_day(record.started_at, record.ended_at, local_zone()):
            raw += minutes
            used = (
                await ServiceRecordDay.filter(user_id=record.user_id, service_date=day)
                .annotate(total=Sum("minutes"))
                .first()
                .values_list("total", flat=True)
            ) or 0
            allowed = max(0, min(minutes, settings.party_daily_minutes_cap - used))
            if allowed:
                await ServiceRecordDay.create(
                    record_id=record.id,
                    user_id=record.user_id,
                    community_id=record.community_id,
                    post_id=record.post_id,
                    service_date=day,
                    minutes=allowed,
                )
                credited += allowed
    points = record.points
    if credited > 0:
        title = (await post_titles([record.post_id])).get(record.post_id) or record.task
        # Priced by the rule in force when the service began; a correction never pays twice.
        entry = await points_rules.award_by_rule_in_tx(
            user_id=record.user_id,
            event_type="service_hour",
            quantity=Decimal(credited) / 60,
            source_type=POINTS_SOURCE,
            source_id=str(record.id),
            reason=f"党员志愿服务 {hours(credited)} 小时：{title}"[:255],
            occurred_at=record.started_at,
        )
        if entry is not None:
            points = entry.delta
    await ServiceRecord.filter(id=record.id).update(
        raw_minutes=raw, minutes=credited, points=points, updated_at=clock.now()
    )
    return await ServiceRecord.get(id=record.id)


def _check_span(errors: dict[str, str], started_at: datetime, ended_at: datetime) -> None:
    # The model makes both aware; whether the span may be credited needs the clock.
    if ended_at <= started_at:
        errors["ended_at"] = "结束时间须晚于开始时间"
    elif ended_at > clock.now() + timedelta(minutes=5):
        errors["ended_at"] = "不能登记将来的服务"
    elif ended_at - started_at > timedelta(minutes=get_settings().party_session_max_minutes):
        hours_max = get_settings().party_session_max_minutes // 60
        errors["ended_at"] = f"单次服务不能超过 {hours_max} 小时，请分次登记"


def _snapshot(record: ServiceRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "started_at": record.started_at.astimezone(UTC).isoformat(),
        "ended_at": record.ended_at.astimezone(UTC).isoformat() if record.ended_at else None,
        "minutes": record.minutes,
    }


async def add_offline_record(*, actor: User, data: OfflineRecordIn) -> ServiceRecord:
    """Staff of the community record service done offline for one of its approved members
    (day cap and points as for a check-in, audited)."""
    if not await Community.exists(id=data.community_id):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, data.community_id)
    errors: dict[str, str] = {}
    _check_span(errors, data.started_at, data.ended_at)
    if data.post_id is not None:
        if not await ServicePost.exists(id=data.post_id, community_id=data.community_id):
            errors["post_id"] = "岗位不属于该社区"
    elif not data.task:
        errors["task"] = "请选择岗位或填写服务事项"
    if not await PartyRegistration.exists(
        user_id=data.user_id, community_id=data.community_id, status="approved"
    ):
        errors["user_id"] = "该居民不是本社区已报到的党员"
    if errors:
        raise Invalid(fields=errors)
    now = clock.now()
    async with in_transaction():
        record = await ServiceRecord.create(
            user_id=data.user_id,
            community_id=data.community_id,
            post_id=data.post_id,
            task=data.task,
            source="offline",
            status="closed",
            started_at=data.started_at,
            ended_at=data.ended_at,
            note=data.note,
            created_by_id=actor.id,
            created_at=now,
            updated_at=now,
        )
        record = await _credit_in_tx(record_id=record.id)
        await ServiceRecordAudit.create(
            record_id=record.id,
            actor_id=actor.id,
            action="created",
            reason=data.note or "线下服务补录",
            before=None,
            after=_snapshot(record),
            created_at=now,
        )
    return record


async def correct_record(*, actor: User, record_id: int, data: CorrectionIn) -> ServiceRecord:
    """Staff correct a record's times (an open or expired one is closed by it): minutes are
    credited again under the day cap, points stay paid once, the change is audited."""
    record = await get_record(viewer=actor, record_id=record_id)
    await accounts_service.require_staff_of(actor, record.community_id)
    errors: dict[str, str] = {}
    _check_span(errors, data.started_at, data.ended_at)
    if errors:
        raise Invalid(fields=errors)
    now = clock.now()
    async with in_transaction():
        before = await ServiceRecord.get(id=record.id)
        changed = await ServiceRecord.filter(id=record.id, updated_at=before.updated_at).update(
            status="closed",
            open_key=None,
            started_at=data.started_at,
            ended_at=data.ended_at,
            updated_at=now,
        )
        if not changed:
            raise Conflict("该记录刚刚被修改，请刷新后再试", code="record_changed")
        corrected = await _credit_in_tx(record_id=record.id)
        await ServiceRecordAudit.create(
            record_id=record.id,
            actor_id=actor.id,
            action="corrected",
            reason=data.reason,
            before=_snapshot(before),
            after=_snapshot(corrected),
            created_at=now,
        )
    return corrected


async def get_record(*, viewer: User, record_id: int) -> ServiceRecord:
    """One service record, for the member or staff of its community."""
    record = await ServiceRecord.get_or_none(id=record_id) if may_exist(record_id) else None
    if record is None or (
        record.user_id != viewer.id
        and not await accounts_service.is_staff_of(viewer, record.community_id)
    ):
        raise NotFound("服务记录不存在")
    return record


async def record_audits(*, record: ServiceRecord) -> list[ServiceRecordAudit]:
    """The audit trail of a record, oldest first."""
    return await ServiceRecordAudit.filter(record_id=record.id).order_by("id")


async def list_records(
    *,
    actor: User,
    page: PageRequest,
    community_id: int,
    user_id: int | None = None,
    post_id: int | None = None,
    status: str | None = None,
) -> Page[ServiceRecord]:
    """A community's service records, newest first (its staff only)."""
    await accounts_service.require_staff_of(actor, community_id)
    queryset = ServiceRecord.filter(community_id=community_id)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if post_id is not None:
        queryset = queryset.filter(post_id=post_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    return await paginate(queryset, page, descending=True)


async def my_service(*, user: User, page: PageRequest) -> MyService:
    """The user's own service records and hours."""
    total = await minutes_sum(ServiceRecordDay.filter(user_id=user.id))
    term_start = date(current_term(), 1, 1)
    term = await minutes_sum(ServiceRecordDay.filter(user_id=user.id, service_date__gte=term_start))
    records = await paginate(ServiceRecord.filter(user_id=user.id), page, descending=True)
    open_record = await ServiceRecord.get_or_none(open_key=f"u{user.id}")
    return MyService(total_minutes=total, term_minutes=term, page=records, open_record=open_record)


async def open_record_at(*, user: User, post_id: int) -> ServiceRecord | None:
    """The user's open check-in at this post, if any (the check-in page offers 签退)."""
    return await ServiceRecord.get_or_none(open_key=f"u{user.id}", post_id=post_id)
