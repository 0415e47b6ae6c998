"""Notices: staff publish them, the bot fans them out, everyone reads them. And the
subscribe-message consents and remembered refusals the bot spends and records.

A notice is never delivered inside the request that publishes it: the bot's scheduler
calls `fan_out_notices`, which turns a published notice into one outbox row per
recipient a batch at a time (see models.Notice for why that is safe in parallel and
after a crash).

A consent is WeChat's "one acceptance = one message" for mini-program subscribe messages.
The count here only ever changes by one guarded statement, so two bot processes can
never spend the same consent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import service as activities_service
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.db import is_postgres
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from backend.core.ids import MAX_ORG_ID, may_exist
from backend.core.models import OutboxMessage
from backend.core.outbox import enqueue_many
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.text import MOMENT_MESSAGE, clean_text, moment_in_window
from backend.notices.audience import Audience, reaches_whole_community, user_filter
from backend.notices.models import (
    AUDIENCES,
    MAX_CONSENTS_PER_CALL,
    TEMPLATE_KEYS,
    DeliveryRefusal,
    Notice,
    SubscriptionConsent,
    SubscriptionHold,
)
from backend.orgs.models import Building, Community, Street, Unit

SUBSCRIBE_CHANNEL = "subscribe"


def _check_template_key(template_key: str) -> None:
    if template_key not in TEMPLATE_KEYS:
        raise Invalid("未知的消息模板", fields={"template_key": "取值不在允许范围内"})


async def record_consent(*, user_id: int, template_key: str, accepted: int) -> int:
    """Add `accepted` consents (race-safe upsert, one guarded increment) and lift an earlier
    subscribe refusal of that template; returns the consents left."""
    _check_template_key(template_key)
    if not 1 <= accepted <= MAX_CONSENTS_PER_CALL:
        raise Invalid(fields={"accepted": f"须在 1 到 {MAX_CONSENTS_PER_CALL} 之间"})
    async with in_transaction():
        # ON CONFLICT DO NOTHING: two first consents at once both end in the increment below.
        await SubscriptionConsent.bulk_create(
            [SubscriptionConsent(user_id=user_id, template_key=template_key, remaining=0)],
            ignore_conflicts=True,
        )
        await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
            remaining=F("remaining") + accepted, updated_at=clock.now()
        )
        # WeChat answers 43101 for a subscribe message when no acceptance is left, so a fresh
        # acceptance is the user saying yes again.
        await DeliveryRefusal.filter(
            user_id=user_id, channel=SUBSCRIBE_CHANNEL, template_key=template_key
        ).delete()
        consent = await SubscriptionConsent.get(user_id=user_id, template_key=template_key)
    return consent.remaining


async def consents_left(*, user_id: int, template_key: str) -> int:
    """How many subscribe messages of this template the user may still receive."""
    consent = await SubscriptionConsent.get_or_none(user_id=user_id, template_key=template_key)
    return consent.remaining if consent else 0


async def spend_consent(*, user_id: int, template_key: str, hold_for: int | None = None) -> bool:
    """Take one consent if one is left, never below zero (one guarded statement). With
    `hold_for` (an outbox id) the consent is held for that message: asking again for the
    same message answers True without taking a second one."""
    if hold_for is not None:
        return hold_for in await spend_consents(wanted=[(hold_for, user_id, template_key)])
    taken = await SubscriptionConsent.filter(
        user_id=user_id, template_key=template_key, remaining__gt=0
    ).update(remaining=F("remaining") - 1, updated_at=clock.now())
    return taken == 1


# Takes one consent from each listed user who has one left and says whose it took: one
# guarded statement for many users (RETURNING works on PostgreSQL and SQLite >= 3.35).
_TAKE_CONSENTS = (
    "UPDATE subscription_consent SET remaining = remaining - 1, updated_at = {}"
    " WHERE template_key = {} AND remaining > 0 AND user_id IN ({})"
    " RETURNING user_id"
)


def _take_consents_sql(users: int) -> str:
    marks = [f"${n}" for n in range(1, users + 3)] if is_postgres() else ["?"] * (users + 2)
    return _TAKE_CONSENTS.format(marks[0], marks[1], ", ".join(marks[2:]))


async def spend_consents(*, wanted: Iterable[tuple[int, int, str]]) -> set[int]:
    """For each (outbox id, user id, template key), hold one consent for that message: the
    one it holds already, else one taken by a guarded statement while the user has one left.
    Returns the outbox ids holding a consent. A user with two messages in the list spends
    two consents or, with one left, gets the first message only."""
    wanted = list(wanted)
    if not wanted:
        return set()
    held = set(
        await SubscriptionHold.filter(outbox_id__in=[w[0] for w in wanted]).values_list(
            "outbox_id", flat=True
        )
    )
    todo = [w for w in wanted if w[0] not in held]
    while todo:
        # The statement takes one consent per user, so each round has each user once.
        this_round: dict[tuple[int, str], tuple[int, int, str]] = {}
        later = []
        for item in todo:
            key = (item[1], item[2])
            if key in this_round:
                later.append(item)
            else:
                this_round[key] = item
        won: set[tuple[int, str]] = set()
        async with in_transaction() as connection:
            for template in sorted({template for _, template in this_round}):
                items = [item for (_, t), item in this_round.items() if t == template]
                rows = await connection.execute_query_dict(
                    _take_consents_sql(len(items)), [clock.now(), template, *(i[1] for i in items)]
                )
                taken = {row["user_id"] for row in rows}
                winners = [item for item in items if item[1] in taken]
                if not winners:
                    continue
                # A second relay holding the same message fails on the unique outbox id,
                # and the rollback gives back what this one took.
                await SubscriptionHold.bulk_create(
                    [
                        SubscriptionHold(outbox_id=o, user_id=u, template_key=t)
                        for o, u, t in winners
                    ]
                )
                held.update(item[0] for item in winners)
                won.update((item[1], item[2]) for item in winners)
        # A user who had no consent left for the first message has none for the next.
        todo = [item for item in later if (item[1], item[2]) in won]
    return held


async def return_consent(*, user_id: int, template_key: str, hold_for: int | None = None) -> None:
    """Give back a consent taken for a message WeChat did not deliver (once per held message)."""
    async with in_transaction():
        if hold_for is not None:
            released = await SubscriptionHold.filter(outbox_id=hold_for).delete()
            if not released:
                return
        await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
            remaining=F("remaining") + 1, updated_at=clock.now()
        )


async def record_refusal(*, user_id: int, channel: str, template_key: str) -> None:
    """Remember that WeChat refused this template on this channel for the user (idempotent)."""
    async with in_transaction():
        await DeliveryRefusal.bulk_create(
            [DeliveryRefusal(user_id=user_id, channel=channel, template_key=template_key)],
            ignore_conflicts=True,
        )
        if channel == SUBSCRIBE_CHANNEL:
            # WeChat holds no acceptance for us any more: our count was stale.
            await SubscriptionConsent.filter(user_id=user_id, template_key=template_key).update(
                remaining=0, updated_at=clock.now()
            )


async def refusals(*, user_ids: Iterable[int]) -> set[tuple[int, str, str]]:
    """(user id, channel, template key) of every refusal the given users made."""
    rows = await DeliveryRefusal.filter(user_id__in=list(user_ids)).values_list(
        "user_id", "channel", "template_key"
    )
    return set(rows)


async def is_refused(*, user_id: int, channel: str, template_key: str) -> bool:
    """Whether WeChat once refused this template on this channel for the user."""
    return await DeliveryRefusal.exists(user_id=user_id, channel=channel, template_key=template_key)


# --- notices ---

TITLE_MAX = 64
BODY_MAX = 5000
LINK_MAX = 255
MAX_TARGETS = 100
MAX_SCHEDULE_DAYS = 180
SUMMARY_CHARS = 40
# The group robot takes 4,096 bytes of markdown: the body is cut so the link always fits.
ROBOT_BODY_CHARS = 1000
NOTICE_TEMPLATE = "notice"
DEDUPE_PREFIX = "notice"

_H5_PATH = re.compile(r"/h5/[A-Za-z0-9/_\-.~%?=&]*")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9/_\-.~%?=&#+]*)?")

# How a failed row's last_error reads to staff: WeChat's errcode when there is one.
FAILURE_REASONS = {
    "43101": "用户拒收此类消息",
    "40003": "接收人 openid 无效",
    "40037": "消息模板 ID 无效",
    "47003": "模板参数不正确",
    "render": "消息内容无法生成",
    "attempts": "多次重试仍失败",
}
_ERRCODE = re.compile(r"(?<![\d-])(4\d{4}|-1)(?!\d)")

# What a renderer (bot.render, installed by the app) makes of a template and its context.
Renderer = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class NoticeDraft:
    """A checked notice, before it is stored (or instead, for a preview)."""

    audience: Audience
    title: str
    body: str
    link: str
    publish_at: datetime
    publisher: str


@dataclass(frozen=True)
class NoticePreview:
    """The message as WeChat and the group robot would show it, and how many it reaches."""

    fields: dict[str, str]
    page: str | None
    url: str | None
    markdown: str
    recipients: int
    robot: bool
    publish_at: datetime
    publisher: str


@dataclass(frozen=True)
class DeliveryCounts:
    """Where a notice's messages stand: per-recipient rows and the group robots'."""

    recipients: int
    fanout_done: bool
    sent: int
    pending: int
    skipped: int
    failed: int
    failed_by_reason: dict[str, int]
    robot: dict[str, int]


def _clean_text(value: Any, *, field: str, label: str, limit: int, errors: dict) -> str:
    # Every field's problem is reported at once, so the form can mark them all.
    try:
        return clean_text(
            value if value is None or isinstance(value, str) else str(value),
            field=field,
            label=label,
            min_length=1,
            max_length=limit,
            multiline=field == "body",
        )
    except Invalid as exc:
        errors.update(exc.fields or {})
        return str(value or "").strip()


def _check_link(value: Any, errors: dict) -> str:
    link = str(value or "").strip()
    if link and (
        len(link) > LINK_MAX or not (_H5_PATH.fullmatch(link) or _HTTPS_URL.fullmatch(link))
    ):
        errors["link"] = "链接须为 /h5/ 开头的页面路径或 https:// 开头的网址"
    return link


def _check_publish_at(value: datetime | None, now: datetime, errors: dict) -> datetime:
    if value is None:
        return now
    if not moment_in_window(value):
        errors["publish_at"] = MOMENT_MESSAGE
        return now
    if value.tzinfo is None:
        # A time without an offset is what staff read on the clock in Shanghai.
        value = value.replace(tzinfo=ZoneInfo(get_settings().timezone))
    value = value.astimezone(UTC)
    if value > now + timedelta(days=MAX_SCHEDULE_DAYS):
        errors["publish_at"] = f"定时发布最多提前 {MAX_SCHEDULE_DAYS} 天"
    # A time already past means now: the list shows notices in the order they went out.
    return max(value, now)


def _check_ids(values: Iterable[Any], *, field: str, largest: int, errors: dict) -> tuple:
    try:
        ids = tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError):
        errors[field] = "编号格式不正确"
        return ()
    if len(ids) > MAX_TARGETS:
        errors[field] = f"最多选择 {MAX_TARGETS} 个"
    elif any(not 1 <= i <= largest for i in ids):
        errors[field] = "编号不存在"
    return ids


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
            view = await activities_service.get_activity(activity_id=audience.activity_id)
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


async def _draft(
    *,
    actor: User,
    title: Any,
    body: Any,
    audience: Any = "all",
    community_id: int | None = None,
    street_id: int | None = None,
    building_ids: Iterable[Any] = (),
    unit_ids: Iterable[Any] = (),
    activity_id: int | None = None,
    link: Any = "",
    publish_at: datetime | None = None,
) -> NoticeDraft:
    """Check what staff wrote and whether `actor` may publish it there (Invalid, Forbidden)."""
    street_id, community_id, publisher = await _scope(actor, community_id, street_id)
    errors: dict[str, str] = {}
    title = _clean_text(title, field="title", label="标题", limit=TITLE_MAX, errors=errors)
    body = _clean_text(body, field="body", label="正文", limit=BODY_MAX, errors=errors)
    link = _check_link(link, errors)
    publish_at = _check_publish_at(publish_at, clock.now(), errors)
    if audience not in AUDIENCES:
        errors["audience"] = "取值不在允许范围内"
    buildings = _check_ids(building_ids, field="building_ids", largest=MAX_ORG_ID, errors=errors)
    units = _check_ids(unit_ids, field="unit_ids", largest=MAX_ORG_ID, errors=errors)
    if buildings and audience != "workers":
        errors["building_ids"] = "只有发给楼宇白领时才能选择楼宇"
    if units and audience != "unit_members":
        errors["unit_ids"] = "只有发给驻区单位成员时才能选择单位"
    if activity_id is not None and not may_exist(activity_id):
        errors["activity_id"] = "活动不存在或不属于本社区"
    if errors:
        raise Invalid(fields=errors)
    target = Audience(
        street_id=street_id,
        community_id=community_id,
        audience=audience,
        building_ids=buildings,
        unit_ids=units,
        activity_id=activity_id,
    )
    await _check_targets(target, errors)
    if errors:
        raise Invalid(fields=errors)
    return NoticeDraft(target, title, body, link, publish_at, publisher)


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


async def create_notice(*, actor: User, **fields: Any) -> Notice:
    """Store a checked notice, published now or scheduled for `publish_at`. Nothing is sent
    here: the bot fans it out once it is due."""
    draft = await _draft(actor=actor, **fields)
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


async def preview_notice(*, actor: User, render: Renderer, **fields: Any) -> NoticePreview:
    """The rendered message and recipient count a notice would have; nothing is stored."""
    draft = await _draft(actor=actor, **fields)
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


def notice_status(notice: Notice) -> str:
    """published, scheduled or cancelled, as a reader sees it now."""
    if notice.status == "cancelled":
        return "cancelled"
    return "published" if notice.publish_at <= clock.now() else "scheduled"


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
        raise Conflict("通知已发布或已取消，不能再取消", code="notice_not_cancellable")
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


def describe_reason(reason: str) -> str:
    """A failure reason code as staff read it."""
    if reason in FAILURE_REASONS:
        return FAILURE_REASONS[reason]
    return f"微信返回错误 {reason}" if reason[-1:].isdigit() else "其他错误"


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
