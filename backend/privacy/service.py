"""The person's own rights under PIPL: a copy of everything held about them, and closing
the account (注销).

Closing keeps the history every total is made of (bookings, service records and their
minutes, the points ledger, wishes and their counts) and removes what makes it theirs:
the user row becomes "已注销用户" with no phone, identity or organisation, and what they
typed that names or locates them is replaced. Open matters are ended through the owning
domains' own services first, so seats go to the waitlist and wishes back to the board
exactly as if the person had done it themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import RoleGrant, User, WechatIdentity
from backend.activities import bookings as activity_bookings
from backend.activities.models import CANCELLABLE_STATUSES, Activity, Booking
from backend.core.clock import clock
from backend.core.errors import DomainError, Invalid
from backend.core.models import IdempotencyRecord, OutboxMessage
from backend.core.security import decrypt_field
from backend.core.xlsx import Spreadsheet
from backend.notices.models import DeliveryRefusal, SubscriptionConsent, SubscriptionHold
from backend.orgs.models import Building, Community, Unit
from backend.party import registrations as party_registrations
from backend.party.models import PartyRegistration, ServicePost, ServiceRecord
from backend.party.views import status_name
from backend.points.models import PointsLedgerEntry, PointsPreference, Redemption, Reward
from backend.wishes import service as wishes_service
from backend.wishes.models import BoardClaim, BoardEvent, Wish, WishEvent, WishPhoto

log = logging.getLogger("linli.privacy")

CONFIRM_WORD = "注销"
ERASED_NAME = "已注销用户"
ERASED_WISH_TITLE = "已注销用户的心愿"
ERASED_WISH_TEXT = "发布人已注销账号，心愿内容已删除。"
# Messages still waiting for the bot: the person has no WeChat identity left to receive them.
_UNSENT = ("pending", "retry")


# --- the copy of one's data (查阅、复制) ---


@dataclass(frozen=True)
class Section:
    """One part of the export: a JSON key, a sheet title and its columns (key, header)."""

    key: str
    title: str
    columns: tuple[tuple[str, str], ...]


SECTIONS = (
    Section(
        "profile",
        "个人资料",
        (
            ("id", "用户编号"),
            ("nickname", "昵称"),
            ("phone", "手机号"),
            ("community", "居住社区"),
            ("building", "工作楼宇"),
            ("unit", "驻区单位"),
            ("points_balance", "积分余额"),
            ("created_at", "注册时间"),
        ),
    ),
    Section(
        "identities",
        "微信身份",
        (("kind", "类型"), ("app_id", "应用"), ("openid", "openid"), ("created_at", "绑定时间")),
    ),
    Section("roles", "角色", (("role", "角色"), ("community", "社区"), ("created_at", "授予时间"))),
    Section(
        "party_registrations",
        "党员报到",
        (
            ("community", "报到社区"),
            ("name", "姓名"),
            ("phone", "手机号"),
            ("work_unit", "工作单位"),
            ("party_org", "所在党组织"),
            ("party_org_contact", "党组织联系人"),
            ("party_org_phone", "党组织联系电话"),
            ("address", "居住地址"),
            ("skills", "技能特长"),
            ("skills_note", "技能说明"),
            ("available_times", "可服务时间"),
            ("available_note", "时间说明"),
            ("status", "状态"),
            ("created_at", "提交时间"),
        ),
    ),
    Section(
        "service_records",
        "服务记录",
        (
            ("post", "岗位或任务"),
            ("started_at", "开始时间"),
            ("ended_at", "结束时间"),
            ("minutes", "计入时长（分钟）"),
            ("points", "积分"),
            ("status", "状态"),
            ("note", "备注"),
        ),
    ),
    Section(
        "bookings",
        "活动报名",
        (
            ("activity", "活动"),
            ("starts_at", "活动时间"),
            ("status", "状态"),
            ("created_at", "报名时间"),
            ("checked_in_at", "签到时间"),
        ),
    ),
    Section(
        "wishes_posted",
        "我发布的心愿",
        (
            ("title", "标题"),
            ("description", "内容"),
            ("category", "类别"),
            ("address", "地址"),
            ("status", "状态"),
            ("created_at", "发布时间"),
            ("thanks", "致谢"),
        ),
    ),
    Section(
        "wishes_claimed",
        "我认领的心愿",
        (
            ("title", "标题"),
            ("status", "状态"),
            ("claimed_at", "认领时间"),
            ("fulfilled_at", "圆梦时间"),
            ("fulfil_note", "圆梦说明"),
        ),
    ),
    Section(
        "points_ledger",
        "积分明细",
        (
            ("created_at", "时间"),
            ("delta", "变动"),
            ("balance_after", "变动后余额"),
            ("reason", "说明"),
        ),
    ),
    Section(
        "redemptions",
        "积分兑换",
        (
            ("reward", "礼品"),
            ("cost", "积分"),
            ("pickup_code", "取件码"),
            ("status", "状态"),
            ("created_at", "兑换时间"),
            ("expires_at", "取件截止"),
        ),
    ),
    Section(
        "subscriptions",
        "消息订阅",
        (("template_key", "消息类型"), ("remaining", "剩余可发送次数"), ("updated_at", "更新时间")),
    ),
    Section(
        "messages",
        "发给我的消息",
        (
            ("created_at", "时间"),
            ("channel", "渠道"),
            ("title", "标题"),
            ("body", "内容"),
            ("status", "状态"),
        ),
    ),
)


async def _names(model: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(await model.filter(id__in=wanted).values_list("id", "name"))


async def _titles(model: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(await model.filter(id__in=wanted).values_list("id", "title"))


async def collect_data(*, user: User) -> dict[str, list[dict[str, Any]]]:
    """Everything Linli holds about `user` and nobody else, section by section (SECTIONS)."""
    uid = user.id
    grants = await RoleGrant.filter(user_id=uid).order_by("id")
    registrations = await PartyRegistration.filter(user_id=uid).order_by("id")
    records = await ServiceRecord.filter(user_id=uid).order_by("started_at", "id")
    bookings = await Booking.filter(user_id=uid).order_by("id")
    posted = await Wish.filter(poster_id=uid).order_by("id")
    claimed = await Wish.filter(claimer_id=uid).order_by("id")
    redemptions = await Redemption.filter(user_id=uid).order_by("id")
    communities = await _names(
        Community,
        {user.community_id}
        | {g.community_id for g in grants}
        | {r.community_id for r in registrations},
    )
    posts = await _titles(ServicePost, {r.post_id for r in records})
    activities = {a.id: a for a in await Activity.filter(id__in={b.activity_id for b in bookings})}
    rewards = await _titles(Reward, {r.reward_id for r in redemptions})
    buildings = await _names(Building, {user.building_id})
    units = await _names(Unit, {user.unit_id})
    messages = await OutboxMessage.filter(user_id=uid).order_by("id")
    return {
        "profile": [
            {
                "id": uid,
                "nickname": user.nickname,
                "phone": decrypt_field(user.phone_encrypted),
                "community": communities.get(user.community_id),
                "building": buildings.get(user.building_id),
                "unit": units.get(user.unit_id),
                "points_balance": user.points_balance,
                "created_at": user.created_at,
            }
        ],
        # Identities without any secret: WeChat's session keys are never stored.
        "identities": [
            {"kind": i.kind, "app_id": i.app_id, "openid": i.openid, "created_at": i.created_at}
            for i in await WechatIdentity.filter(user_id=uid).order_by("id")
        ],
        "roles": [
            {
                "role": accounts_service.ROLE_NAMES.get(g.role, g.role),
                "community": communities.get(g.community_id),
                "created_at": g.created_at,
            }
            for g in grants
        ],
        "party_registrations": [
            {
                "community": communities.get(r.community_id),
                "name": r.name,
                "phone": decrypt_field(r.phone_encrypted),
                "work_unit": r.work_unit,
                "party_org": r.party_org,
                "party_org_contact": r.party_org_contact,
                "party_org_phone": decrypt_field(r.party_org_phone_encrypted),
                "address": r.address,
                "skills": "、".join(r.skills or []),
                "skills_note": r.skills_note,
                "available_times": "、".join(r.available_times or []),
                "available_note": r.available_note,
                "status": status_name(r.status),
                "created_at": r.created_at,
            }
            for r in registrations
        ],
        "service_records": [
            {
                "post": posts.get(r.post_id) or r.task,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "minutes": r.minutes,
                "points": r.points,
                "status": r.status,
                "note": r.note,
            }
            for r in records
        ],
        "bookings": [
            {
                "activity": activities[b.activity_id].title,
                "starts_at": activities[b.activity_id].starts_at,
                "status": b.status,
                "created_at": b.created_at,
                "checked_in_at": b.checked_in_at,
            }
            for b in bookings
        ],
        "wishes_posted": [
            {
                "title": w.title,
                "description": w.description,
                "category": w.category,
                "address": w.address,
                "status": w.status,
                "created_at": w.created_at,
                "thanks": w.thanks,
            }
            for w in posted
        ],
        "wishes_claimed": [
            {
                "title": w.title,
                "status": w.status,
                "claimed_at": w.claimed_at,
                "fulfilled_at": w.fulfilled_at,
                "fulfil_note": w.fulfil_note,
            }
            for w in claimed
        ],
        "points_ledger": [
            {
                "created_at": e.created_at,
                "delta": e.delta,
                "balance_after": e.balance_after,
                "reason": e.reason,
            }
            for e in await PointsLedgerEntry.filter(user_id=uid).order_by("id")
        ],
        "redemptions": [
            {
                "reward": rewards.get(r.reward_id),
                "cost": r.cost,
                "pickup_code": r.pickup_code,
                "status": r.status,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
            }
            for r in redemptions
        ],
        "subscriptions": [
            {"template_key": c.template_key, "remaining": c.remaining, "updated_at": c.updated_at}
            for c in await SubscriptionConsent.filter(user_id=uid).order_by("id")
        ],
        "messages": [
            {
                "created_at": m.created_at,
                "channel": m.channel,
                "title": (m.context or {}).get("title", ""),
                "body": (m.context or {}).get("body") or (m.context or {}).get("summary", ""),
                "status": m.status,
            }
            for m in messages
        ],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def export_json(*, user: User) -> dict[str, Any]:
    """The person's data as JSON: one list per section, times in ISO 8601."""
    data = await collect_data(user=user)
    return {
        "generated_at": clock.now().isoformat(),
        **{
            key: [{k: _json_value(v) for k, v in row.items()} for row in rows]
            for key, rows in data.items()
        },
    }


async def export_xlsx(*, user: User) -> tuple[str, bytes]:
    """The person's data as a workbook, one sheet per section: (file name, bytes)."""
    data = await collect_data(user=user)
    book = Spreadsheet()
    for section in SECTIONS:
        sheet = book.sheet(section.title, header=[header for _, header in section.columns])
        for row in data[section.key]:
            sheet.append([row.get(key) for key, _ in section.columns])
    return f"邻里-我的数据-{clock.now():%Y%m%d}.xlsx", book.to_bytes()


# --- closing the account (注销) ---


def check_confirmation(confirm: str | None) -> None:
    """Invalid unless the person typed the confirmation word."""
    if (confirm or "").strip() != CONFIRM_WORD:
        raise Invalid(
            "请输入“注销”两个字确认注销账号",
            fields={"confirm": f"请输入“{CONFIRM_WORD}”两个字确认"},
        )


async def _end_open_matters(user: User) -> None:
    """What the person holds that others wait on, ended as the person would end it."""
    now = clock.now()
    live = await Booking.filter(
        user_id=user.id,
        status__in=CANCELLABLE_STATUSES,
        activity__starts_at__gt=now,
    ).values_list("id", flat=True)
    for booking_id in live:
        try:
            await activity_bookings.cancel_booking(user=user, booking_id=booking_id)
        except DomainError as exc:
            # Past the cancellation deadline the seat stays booked, as for anyone else.
            log.info("booking %s kept on closing an account: %s", booking_id, exc.code)
    for wish_id in await Wish.filter(claimer_id=user.id, status="claimed").values_list(
        "id", flat=True
    ):
        try:
            await wishes_service.release_wish(user=user, wish_id=wish_id)
        except DomainError as exc:
            log.info("wish %s not released on closing an account: %s", wish_id, exc.code)
    for wish_id in await Wish.filter(
        poster_id=user.id, status__in=("pending_review", "open")
    ).values_list("id", flat=True):
        try:
            await wishes_service.withdraw_wish(user=user, wish_id=wish_id)
        except DomainError as exc:
            log.info("wish %s not withdrawn on closing an account: %s", wish_id, exc.code)
    if await PartyRegistration.exists(active_key=f"u{user.id}"):
        try:
            await party_registrations.withdraw_registration(user=user)
        except DomainError as exc:
            log.info("registration not ended on closing an account: %s", exc.code)


async def _erase_in_tx(user_id: int, now: datetime) -> bool:
    erased = await User.filter(id=user_id, erased_at=None).update(
        nickname=ERASED_NAME,
        phone_encrypted=None,
        phone_index=None,
        community_id=None,
        building_id=None,
        unit_id=None,
        unionid=None,
        persona=None,
        erased_at=now,
    )
    if not erased:
        return False
    await accounts_service.end_sessions_in_tx(user_id=user_id)
    await WechatIdentity.filter(user_id=user_id).delete()
    await RoleGrant.filter(user_id=user_id).delete()
    # The registration stays, with its work unit and party organisation, so service hours
    # still add up per unit in the 双报到 report; what names or reaches the person goes.
    await PartyRegistration.filter(user_id=user_id).update(
        name=ERASED_NAME,
        phone_encrypted="",
        phone_index="",
        party_org_contact="",
        party_org_phone_encrypted=None,
        address="",
        skills_note="",
        available_note="",
    )
    await Wish.filter(poster_id=user_id).update(
        title=ERASED_WISH_TITLE, description=ERASED_WISH_TEXT, address="", thanks=""
    )
    claimed = await Wish.filter(claimer_id=user_id).values_list("id", flat=True)
    if claimed:
        await Wish.filter(id__in=claimed).update(fulfil_note="")
        # A fulfilment photo the person took may show them or their home.
        await WishPhoto.filter(wish_id__in=claimed).delete()
    await WishEvent.filter(actor_id=user_id).update(note="")
    await BoardEvent.filter(actor_id=user_id).update(note="")
    await BoardClaim.filter(claimed_by_id=user_id).update(progress_note="")
    await SubscriptionConsent.filter(user_id=user_id).delete()
    await DeliveryRefusal.filter(user_id=user_id).delete()
    await SubscriptionHold.filter(user_id=user_id).delete()
    await PointsPreference.filter(user_id=user_id).delete()
    await OutboxMessage.filter(user_id=user_id, status__in=_UNSENT).update(status="skipped")
    await OutboxMessage.filter(user_id=user_id).update(context={}, recipient=None)
    # Stored answers to the person's retried requests may quote their own data.
    await IdempotencyRecord.filter(scope=f"user:{user_id}").delete()
    return True


async def close_account(*, user: User, confirm: str | None) -> datetime:
    """注销: every session ends at once, open bookings and claims are ended through their
    services, then the person's data is removed in one transaction while the history and
    every total stay; returns when it was closed. Invalid without the confirmation word."""
    check_confirmation(confirm)
    async with in_transaction():
        # First, so nothing can be done in the person's name while the rest runs.
        await accounts_service.end_sessions_in_tx(user_id=user.id)
    await _end_open_matters(user)
    now = clock.now()
    async with in_transaction():
        if not await _erase_in_tx(user.id, now):
            raise Invalid("该账号已注销")
    log.info("account %s closed", user.id)
    return now
