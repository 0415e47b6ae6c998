"""Notices: staff publish them, the bot fans them out, everyone reads them (the consents
the bot spends are `consents`).

A notice is never delivered inside the request that publishes it: the bot's scheduler
calls `fan_out_notices`, which turns a published notice into one outbox row per
recipient a batch at a time (see models.Notice for why that is safe in parallel and
after a crash).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import catalogue as activity_catalogue
from backend.core.clock import as_local, clock
from backend.core.config import get_settings
from backend.core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from backend.core.ids import MAX_ORG_ID, may_exist
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue_many
from backend.core.pagination import Page, PageRequest, paginate
from backend.notices.audience import Audience, reaches_whole_community, user_filter
from backend.notices.exceptions import NoticeNotCancellable
from backend.notices.models import Notice
from backend.notices.schemas import NoticeIn
from backend.notices.views import (
    DeliveryCounts,
    NoticeDraft,
    NoticePreview,
    Renderer,
    notice_status,
)
from backend.orgs.models import Building, Community, Street, Unit

MAX_SCHEDULE_DAYS = 180
SUMMARY_CHARS = 40
# The group robot takes 4,096 bytes of markdown: the body is cut so the link always fits.
ROBOT_BODY_CHARS = 1000
NOTICE_TEMPLATE = "notice"
DEDUPE_PREFIX = "notice"

_H5_PATH = re.compile(r"/h5/[A-Za-z0-9/_\-.~%?=&]*")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9/_\-.~%?=&#+]*)?")

_ERRCODE = re.compile(r"(?<![\d-])(4\d{4}|-1)(?!\d)")


def _check_link(link: str, errors: dict) -> None:
    if link and not (_H5_PATH.fullmatch(link) or _HTTPS_URL.fullmatch(link)):
        errors["link"] = "链接须为 /h5/ 开头的页面路径或 https:// 开头的网址"


def _check_publish_at(value: datetime | None, now: datetime, errors: dict) -> datetime:
    if value is None:
        return now
    # A time without an offset is what staff read on the clock in the street.
    value = as_local(value)
    if value > now + timedelta(days=MAX_SCHEDULE_DAYS):
        errors["publish_at"] = f"定时发布最多提前 {MAX_SCHEDULE_DAYS} 天"
    # A time already past means now: the list shows notices in the order they went out.
    return max(value, now)


async def _scope(
    actor: User, community_id: int | None, street_id: int | None
) -> tuple[int, int | None, str]:
    """(street id, community id, publisher name) of a notice `actor` may publish."""
    if community_id is not None:
        in_range = may_exist(community_id, MAX_ORG_ID)
        community = await Community.get_or_none(id=community_id) if in_range else None
        if community is None:
            raise Invalid(fields={"community_id": "社区不存在"})
        await accounts_service.require_staff_of(actor, community.id)
        return community.street_id, community.id, community.name
    if not await accounts_service.is_street_admin(actor):
        raise Forbidden("只有街道管理员可以发布全街道通知，社区通知请选择社区")
    streets = Street.all()
    if street_id is not None:
        streets = streets.filter(id=street_id if may_exist(street_id, MAX_ORG_ID) else 0)
    found = await streets.order_by("id").limit(2)
    if len(found) != 1:
        raise Invalid(fields={"street_id": "请指定街道" if found else "街道不存在"})
    return found[0].id, None, found[0].name


async def _check_targets(audience: Audience, errors: dict) -> None:
    """Chosen buildings, units and activity must exist inside the notice's community/street."""
    near = Q(street_id=audience.street_id)
    if audience.community_id is not None:
        # A community notice may reach its own buildings and units and the street-level ones.
        near &= Q(community_id=audience.community_id) | Q(community_id__isnull=True)
    for field, model, ids, label in (
        ("building_ids", Building, audience.building_ids, "楼宇"),
        ("unit_ids", Unit, audience.unit_ids, "驻区单位"),
    ):
        if ids and await model.filter(near, id__in=list(ids)).count() != len(ids):
            errors[field] = f"所选{label}不存在或不在本通知范围内"
    if audience.activity_id is not None:
        try:
            view = await activity_catalogue.get_activity(activity_id=audience.activity_id)
        except NotFound:
            view = None
        activity = view.activity if view else None
        if activity is None or (
            audience.community_id is not None and activity.community_id != audience.community_id
        ):
            errors["activity_id"] = "活动不存在或不属于本社区"
        elif audience.community_id is None and not await Community.exists(
            id=activity.community_id, street_id=audience.street_id
        ):
            errors["activity_id"] = "活动不属于本街道"


async def _draft(*, actor: User, data: NoticeIn) -> NoticeDraft:
    """Check what needs the database and the clock, and whether `actor` may publish the
    notice there (Invalid, Forbidden); the model has checked its shape."""
    street_id, community_id, publisher = await _scope(actor, data.community_id, data.street_id)
    errors: dict[str, str] = {}
    _check_link(data.link, errors)
    publish_at = _check_publish_at(data.publish_at, clock.now(), errors)
    buildings = tuple(sorted(set(data.building_ids)))
    units = tuple(sorted(set(data.unit_ids)))
    if buildings and data.audience != "workers":
        errors["building_ids"] = "只有发给楼宇白领时才能选择楼宇"
    if units and data.audience != "unit_members":
        errors["unit_ids"] = "只有发给驻区单位成员时才能选择单位"
    if errors:
        raise Invalid(fields=errors)
    target = Audience(
        street_id=street_id,
        community_id=community_id,
        audience=data.audience,
        building_ids=buildings,
        unit_ids=units,
        activity_id=data.activity_id,
    )
    await _check_targets(target, errors)
    if errors:
        raise Invalid(fields=errors)
    return NoticeDraft(target, data.title, data.body, data.link, publish_at, publisher)


def _audience_of(notice: Notice) -> Audience:
    return Audience(
        street_id=notice.street_id,
        community_id=notice.community_id,
        audience=notice.audience,
        building_ids=tuple(notice.building_ids or ()),
        unit_ids=tuple(notice.unit_ids or ()),
        activity_id=notice.activity_id,
    )


def _message_context(
    *,
    notice_id: int | None,
    title: str,
    body: str,
    publisher: str,
    publish_at: datetime,
    for_robot: bool = False,
) -> dict[str, Any]:
    """The outbox context of a notice message (template `notice`); the robot's carries the body."""
    path = f"/h5/notices/{notice_id}" if notice_id is not None else "/h5/notices"
    context: dict[str, Any] = {
        "title": title,
        "summary": " ".join(body.split())[:SUMMARY_CHARS],
        "publisher": publisher,
        "published_at": publish_at.astimezone(UTC).isoformat(),
        "url": path,
        "page": f"pages/notices/detail?id={notice_id}" if notice_id else "pages/notices/index",
    }
    if for_robot:
        context["body"] = body if len(body) <= ROBOT_BODY_CHARS else body[:ROBOT_BODY_CHARS] + "…"
        context["link"] = get_settings().public_base_url.rstrip("/") + path
    return context


async def _robots(audience: Audience) -> list[tuple[int, str]]:
    """(community id, robot key) of the group robots a notice goes to: a notice for everyone
    in a community goes to its robot, a street-wide one to every community's."""
    if not reaches_whole_community(audience):
        return []
    where = (
        Q(id=audience.community_id)
        if audience.community_id is not None
        else Q(street_id=audience.street_id)
    )
    return await (
        Community.filter(where, wecom_robot_key__isnull=False)
        .exclude(wecom_robot_key="")
        .order_by("id")
        .values_list("id", "wecom_robot_key")
    )


async def create_notice(*, actor: User, data: NoticeIn) -> Notice:
    """Store a checked notice, published now or scheduled for `publish_at`. Nothing is sent
    here: the bot fans it out once it is due."""
    draft = await _draft(actor=actor, data=data)
    now = clock.now()
    async with in_transaction():
        notice = await Notice.create(
            street_id=draft.audience.street_id,
            community_id=draft.audience.community_id,
            title=draft.title,
            body=draft.body,
            link=draft.link,
            audience=draft.audience.audience,
            building_ids=list(draft.audience.building_ids),
            unit_ids=list(draft.audience.unit_ids),
            activity_id=draft.audience.activity_id,
            status="published" if draft.publish_at <= now else "scheduled",
            publish_at=draft.publish_at,
            created_by=actor,
            created_at=now,
        )
    return await _load(notice.id)


async def preview_notice(*, actor: User, render: Renderer, data: NoticeIn) -> NoticePreview:
    """The rendered message and recipient count a notice would have; nothing is stored."""
    draft = await _draft(actor=actor, data=data)
    context = _message_context(
        notice_id=None,
        title=draft.title,
        body=draft.body,
        publisher=draft.publisher,
        publish_at=draft.publish_at,
        for_robot=True,
    )
    rendered = render(NOTICE_TEMPLATE, context)
    return NoticePreview(
        fields=rendered["fields"],
        page=rendered["page"],
        url=rendered["url"],
        markdown=rendered["markdown"],
        recipients=await User.filter(user_filter(draft.audience)).count(),
        robot=bool(await _robots(draft.audience)),
        publish_at=draft.publish_at,
        publisher=draft.publisher,
    )


def _published(now: datetime) -> Q:
    # Due scheduled notices are readable at once, before the bot marks them published.
    return Q(status__in=("published", "scheduled"), publish_at__lte=now)


async def _load(notice_id: int) -> Notice:
    notice = (
        await Notice.get_or_none(id=notice_id).prefetch_related("community", "street")
        if may_exist(notice_id)
        else None
    )
    if notice is None:
        raise NotFound("通知不存在")
    return notice


async def may_manage(*, user: User | None, notice: Notice) -> bool:
    """Whether `user` may see the delivery of, and cancel, this notice."""
    if user is None:
        return False
    if notice.community_id is None:
        return await accounts_service.is_street_admin(user)
    return await accounts_service.is_staff_of(user, notice.community_id)


async def get_notice(*, notice_id: int, viewer: User | None = None) -> Notice:
    """A published notice for anyone; a scheduled or cancelled one only for its staff."""
    notice = await _load(notice_id)
    if notice_status(notice) != "published" and not await may_manage(user=viewer, notice=notice):
        raise NotFound("通知不存在")
    return notice


async def list_notices(
    *,
    page: PageRequest,
    community_id: int | None = None,
    status: str = "published",
    viewer: User | None = None,
) -> Page[Notice]:
    """Notices newest first. Published ones are public (of a community: its own and the
    street-wide ones). Other statuses ("scheduled", "cancelled", "all") only for staff, of
    the communities they manage."""
    now = clock.now()
    query = Notice.all().prefetch_related("community", "street")
    if community_id is not None:
        in_range = may_exist(community_id, MAX_ORG_ID)
        community = await Community.get_or_none(id=community_id) if in_range else None
        if community is None:
            raise NotFound("社区不存在")
        query = query.filter(
            Q(community_id=community.id)
            | Q(community_id__isnull=True, street_id=community.street_id)
        )
    if status == "published":
        return await paginate(query.filter(_published(now)), page, descending=True)
    if status not in ("scheduled", "cancelled", "all"):
        raise Invalid(fields={"status": "取值不在允许范围内"})
    if viewer is None:
        raise Unauthenticated()
    managed = await accounts_service.staff_community_ids(viewer)
    if managed is not None:
        if not managed:
            raise Forbidden("只有社区工作人员可以查看未发布的通知")
        query = query.filter(community_id__in=managed)
    if status == "scheduled":
        query = query.filter(status="scheduled", publish_at__gt=now)
    elif status == "cancelled":
        query = query.filter(status="cancelled")
    return await paginate(query, page, descending=True)


async def cancel_notice(*, actor: User, notice_id: int) -> Notice:
    """Cancel a scheduled notice before its time (one guarded statement: the bot never fans
    out a cancelled notice, and a due one can no longer be cancelled)."""
    notice = await _load(notice_id)
    if not await may_manage(user=actor, notice=notice):
        raise Forbidden("只有本社区的工作人员可以取消通知")
    now = clock.now()
    async with in_transaction():
        cancelled = await Notice.filter(
            id=notice.id, status="scheduled", publish_at__gt=now
        ).update(status="cancelled", cancelled_at=now)
    if not cancelled:
        raise NoticeNotCancellable()
    return await _load(notice.id)


def _reason(last_error: str | None, status: str) -> str:
    if status == "refused":
        return "43101"
    text = last_error or ""
    match = _ERRCODE.search(text)
    if match:
        return match.group(1)
    if text.startswith("render"):
        return "render"
    return "attempts" if text else "other"


async def delivery_counts(*, actor: User, notice_id: int) -> DeliveryCounts:
    """How the notice's messages stand (staff of its community, or street admins)."""
    notice = await _load(notice_id)
    if not await may_manage(user=actor, notice=notice):
        raise Forbidden("只有本社区的工作人员可以查看发送情况")
    groups = (
        await OutboxMessage.filter(dedupe_key__startswith=f"{DEDUPE_PREFIX}:{notice.id}:")
        .annotate(n=Count("id"))
        .group_by("channel", "status", "last_error")
        .values("channel", "status", "last_error", "n")
    )
    counts = {"sent": 0, "pending": 0, "skipped": 0, "failed": 0}
    robot = {"sent": 0, "pending": 0, "failed": 0}
    reasons: dict[str, int] = {}
    for group in groups:
        status, n = group["status"], group["n"]
        bucket = {"retry": "pending", "refused": "failed"}.get(status, status)
        if group["channel"] == "wecom":
            robot[bucket if bucket in robot else "failed"] += n
            continue
        counts[bucket] += n
        if bucket == "failed":
            reason = _reason(group["last_error"], status)
            reasons[reason] = reasons.get(reason, 0) + n
    return DeliveryCounts(
        recipients=notice.fanout_count,
        fanout_done=notice.fanout_done_at is not None,
        failed_by_reason=dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        robot=robot,
        **counts,
    )


async def fan_out_notices(*, batch_size: int, max_batches: int) -> int:
    """Publish due scheduled notices and turn up to `max_batches` batches of recipients into
    outbox rows; returns the rows written. Safe to run in several processes at once and
    after a crash: each batch moves the notice's cursor by one guarded UPDATE in the
    transaction that writes its rows, and every row has a dedupe key per notice and user."""
    now = clock.now()
    await Notice.filter(status="scheduled", publish_at__lte=now).update(status="published")
    written = 0
    for _ in range(max_batches):
        due = Notice.filter(status="published", fanout_done_at__isnull=True, publish_at__lte=now)
        notice = (
            await due.order_by("publish_at", "id").prefetch_related("community", "street").first()
        )
        if notice is None:
            break
        written += await _fan_out_batch(notice, batch_size)
    return written


async def _fan_out_batch(notice: Notice, batch_size: int) -> int:
    audience = _audience_of(notice)
    user_ids = (
        await User.filter(user_filter(audience), id__gt=notice.fanout_cursor)
        .order_by("id")
        .limit(batch_size)
        .values_list("id", flat=True)
    )
    publisher = notice.community.name if notice.community else notice.street.name
    context = _message_context(
        notice_id=notice.id,
        title=notice.title,
        body=notice.body,
        publisher=publisher,
        publish_at=notice.publish_at,
    )
    now = clock.now()
    async with in_transaction():
        # First, so a parallel fan-out of the same batch waits here and then finds 0 rows.
        moved = await Notice.filter(
            id=notice.id,
            status="published",
            fanout_cursor=notice.fanout_cursor,
            fanout_done_at__isnull=True,
        ).update(
            fanout_cursor=user_ids[-1] if user_ids else notice.fanout_cursor,
            fanout_count=F("fanout_count") + len(user_ids),
            fanout_done_at=now if len(user_ids) < batch_size else None,
        )
        if not moved:
            return 0
        if notice.fanout_cursor == 0:
            robot_context = _message_context(
                notice_id=notice.id,
                title=notice.title,
                body=notice.body,
                publisher=publisher,
                publish_at=notice.publish_at,
                for_robot=True,
            )
            await enqueue_many(
                {
                    "template_key": NOTICE_TEMPLATE,
                    "context": robot_context,
                    "dedupe_key": f"{DEDUPE_PREFIX}:{notice.id}:robot:{community_id}",
                    "channel": "wecom",
                    "recipient": key,
                }
                for community_id, key in await _robots(audience)
            )
        await enqueue_many(
            {
                "template_key": NOTICE_TEMPLATE,
                "context": context,
                "dedupe_key": f"{DEDUPE_PREFIX}:{notice.id}:user:{user_id}",
                "user_id": user_id,
            }
            for user_id in user_ids
        )
    return len(user_ids)
