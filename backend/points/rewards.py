"""Rewards and redemptions: staff put rewards up, residents redeem them, staff verify (核销).

A redemption changes three guarded numbers in one transaction, or none of them: the
user's live redemptions of the reward (`RewardHolding.count < per_user_limit`), the
balance (through the ledger, `points_balance >= cost`), and the stock (`stock >= 1`). The
stock row is the hot one, so it is taken last and held for the shortest time. Lock order
everywhere: holding, user (and their batches), reward.

A redemption waits for pickup with a random code. Staff verify it once; staff may cancel
it, and the bot expires it after the reward's pickup days: both return the points into
the batches they came from, the stock and the per-user allowance.

A reward's picture is uploaded by staff and served from this site, because the H5 pages
only load images from their own origin; an external https:// address staff typed is kept
for the mini-program and shown when no picture was uploaded.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, Invalid, NotFound
from backend.core.outbox import enqueue
from backend.core.pagination import Page, PageRequest, paginate
from backend.core.text import MOMENT_MESSAGE, clean_text, moment_in_window
from backend.orgs.models import Community
from backend.points import ledger
from backend.points.exceptions import LimitReached, NotOnSale, OutOfStock
from backend.points.models import (
    PointsLedgerEntry,
    Redemption,
    Reward,
    RewardHolding,
    RewardPicture,
)
from backend.points.schemas import REASON_MAX, REASON_MIN, TEXT_LIMITS, RewardIn, RewardPatch
from backend.points.views import is_on_sale

log = logging.getLogger("linli.points.rewards")

PENDING = "pending_pickup"
FULFILLED = "fulfilled"
CANCELLED = "cancelled"
EXPIRED = "expired"
STATUSES = (PENDING, FULFILLED, CANCELLED, EXPIRED)
STATUS_NAMES = {PENDING: "待领取", FULFILLED: "已领取", CANCELLED: "已取消", EXPIRED: "已过期"}

PICKUP_CODE_DIGITS = 8
CODE_ATTEMPTS = 5
MAX_COST = 100_000
MAX_STOCK = 100_000
MAX_PER_USER = 100
BATCH_SIZE = 200


_CLOSED = {
    FULFILLED: ("already_fulfilled", "该领取码已核销，不能重复领取"),
    CANCELLED: ("redemption_cancelled", "该兑换已取消，积分已退还"),
    EXPIRED: ("redemption_expired", "该兑换已超过领取期限，积分已退还"),
}


def _closed_error(redemption: Redemption) -> Conflict:
    if redemption.status == PENDING:  # still waiting, but its pickup days are over
        return Conflict("该兑换已超过领取期限", code="redemption_expired")
    code, message = _CLOSED[redemption.status]
    return Conflict(message, code=code)


# --- rewards ---


def _clean_reward_values(values: dict[str, Any]) -> dict[str, Any]:
    """Trimmed values, or Invalid with a Chinese reason per field."""
    errors: dict[str, str] = {}
    clean = dict(values)
    for field, label in (
        ("title", "礼品名称"),
        ("description", "介绍"),
        ("pickup_place", "领取地点"),
        ("image_url", "图片地址"),
    ):
        if field in clean:
            try:
                clean[field] = clean_text(
                    clean[field],
                    field=field,
                    label=label,
                    min_length=1 if field == "title" else 0,
                    max_length=TEXT_LIMITS[field],
                    multiline=field == "description",
                )
            except Invalid as exc:
                errors.update(exc.fields or {})
    # Same-site paths are the uploaded pictures' alone: a typed one could make every
    # shop visitor's browser request any page of this site.
    url = clean.get("image_url")
    if url and not url.startswith("https://"):
        errors["image_url"] = "图片地址须以 https:// 开头"
    for field, low, high, label in (
        ("cost", 1, MAX_COST, "所需积分"),
        ("stock", 0, MAX_STOCK, "库存"),
        ("per_user_limit", 1, MAX_PER_USER, "每人限兑"),
        ("pickup_days", 1, 90, "领取期限"),
    ):
        value = clean.get(field)
        if value is not None and not low <= value <= high:
            errors[field] = f"{label}须在 {low}–{high} 之间"
    for field in ("on_sale_from", "on_sale_until"):
        moment = clean.get(field)
        if moment is not None:
            if moment.tzinfo is None:
                errors[field] = "请带上时区"
            elif not moment_in_window(moment):
                errors[field] = MOMENT_MESSAGE
            else:
                clean[field] = moment.astimezone(UTC)
    start, end = clean.get("on_sale_from"), clean.get("on_sale_until")
    if start and end and start.tzinfo and end.tzinfo and end <= start:
        errors["on_sale_until"] = "结束时间须晚于开始时间"
    if errors:
        raise Invalid(fields=errors)
    return clean


async def create_reward(*, actor: User, data: RewardIn, picture: bytes | None = None) -> Reward:
    """A new reward of a community (with its picture, if given), put up by its staff (or a
    street admin); with anything invalid nothing is written."""
    if not await Community.exists(id=data.community_id):
        raise Invalid(fields={"community_id": "社区不存在"})
    await accounts_service.require_staff_of(actor, data.community_id)
    values = _clean_reward_values(
        data.model_dump(exclude={"community_id"})
        | {"pickup_days": data.pickup_days or get_settings().points_pickup_days}
    )
    picture_type = _picture_type(picture)
    async with in_transaction():
        reward = await Reward.create(
            community_id=data.community_id,
            created_by_id=actor.id,
            created_at=clock.now(),
            **values,
        )
        if picture is not None:
            await _store_picture(reward.id, picture_type, picture)
    log.info("reward %s put up by user %s", reward.id, actor.id)
    return await get_reward(reward_id=reward.id)


async def update_reward(
    *, actor: User, reward_id: int, data: RewardPatch, picture: bytes | None = None
) -> Reward:
    """Change a reward's details (the fields set in `data`, not its stock) and, if given,
    replace its picture, all or nothing: redemptions made keep the cost they paid."""
    reward = await _reward(reward_id)
    await accounts_service.require_staff_of(actor, reward.community_id)
    values = _clean_reward_values(data.model_dump(exclude_unset=True))
    window = {
        "on_sale_from": values.get("on_sale_from", reward.on_sale_from),
        "on_sale_until": values.get("on_sale_until", reward.on_sale_until),
    }
    _clean_reward_values(window)
    for field in ("title", "cost", "per_user_limit", "pickup_days", "active"):
        if field in values and values[field] is None:
            raise Invalid(fields={field: "不能为空"})
    picture_type = _picture_type(picture)
    async with in_transaction():
        if values:
            await Reward.filter(id=reward.id).update(**values)
        if picture is not None:
            await _store_picture(reward.id, picture_type, picture)
            log.info("reward %s picture uploaded by user %s", reward.id, actor.id)
    return await get_reward(reward_id=reward.id)


async def change_stock(*, actor: User, reward_id: int, delta: int) -> Reward:
    """Add stock (or take it back), never below zero whatever is being redeemed meanwhile."""
    reward = await _reward(reward_id)
    await accounts_service.require_staff_of(actor, reward.community_id)
    if delta == 0 or abs(delta) > MAX_STOCK:
        raise Invalid(fields={"delta": f"库存变化须在 ±1–{MAX_STOCK} 之间"})
    guarded = Reward.filter(id=reward.id, stock__lte=MAX_STOCK - delta)
    if delta < 0:
        guarded = guarded.filter(stock__gte=-delta)
    if not await guarded.update(stock=F("stock") + delta):
        raise Conflict("库存不足，不能减少这么多", code="insufficient_stock")
    log.info("reward %s stock %+d by user %s", reward.id, delta, actor.id)
    return await get_reward(reward_id=reward.id)


async def _reward(reward_id: int) -> Reward:
    reward = await Reward.get_or_none(id=reward_id)
    if reward is None:
        raise NotFound("礼品不存在")
    return reward


async def get_reward(*, reward_id: int) -> Reward:
    """The reward with this id, ready to be shown with its picture, or NotFound."""
    reward = await _reward(reward_id)
    await _with_pictures([reward])
    return reward


async def list_rewards(
    *, page: PageRequest, community_id: int | None = None, on_sale: bool = False
) -> Page[Reward]:
    """Active rewards (only those on sale now when `on_sale`), oldest first."""
    query = Reward.filter(active=True)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if on_sale:
        now = clock.now()
        query = query.filter(
            Q(on_sale_from__isnull=True) | Q(on_sale_from__lte=now),
            Q(on_sale_until__isnull=True) | Q(on_sale_until__gt=now),
        )
    result = await paginate(query, page)
    await _with_pictures(result.items)
    return result


async def list_managed_rewards(
    *, actor: User, community_id: int, page: PageRequest
) -> Page[Reward]:
    """Every reward of a community, withdrawn ones too, for its staff; newest first."""
    await accounts_service.require_staff_of(actor, community_id)
    result = await paginate(Reward.filter(community_id=community_id), page, descending=True)
    await _with_pictures(result.items)
    return result


# --- pictures ---


async def _with_pictures(rewards: list[Reward]) -> None:
    """Tell each reward when its picture last changed, without loading any picture."""
    if not rewards:
        return
    ids = [reward.id for reward in rewards]
    changed = dict(
        await RewardPicture.filter(reward_id__in=ids).values_list("reward_id", "updated_at")
    )
    for reward in rewards:
        reward.picture_at = changed.get(reward.id)


def _picture_type(content: bytes | None) -> str:
    """The content type of an acceptable picture ("" for none), or Invalid."""
    if content is None:
        return ""
    return images.check_image(content, field="picture", label="礼品图片")


async def _store_picture(reward_id: int, content_type: str, content: bytes) -> None:
    """In the caller's transaction: this becomes the reward's one picture."""
    values = {"content_type": content_type, "content": content, "updated_at": clock.now()}
    if await RewardPicture.filter(reward_id=reward_id).update(**values):
        return
    try:
        async with in_transaction():  # a savepoint: a first upload may race another
            await RewardPicture.create(reward_id=reward_id, **values)
    except IntegrityError:
        await RewardPicture.filter(reward_id=reward_id).update(**values)


async def set_picture(*, actor: User, reward_id: int, content: bytes) -> Reward:
    """Show this JPG, PNG or WebP for the reward from now on, replacing any earlier one;
    a file that is not such a picture (or too big) is refused with nothing written."""
    return await update_reward(
        actor=actor, reward_id=reward_id, data=RewardPatch(), picture=content
    )


async def remove_picture(*, actor: User, reward_id: int) -> Reward:
    """Stop showing the uploaded picture (the external address, if any, shows again);
    removing a picture that is not there changes nothing."""
    reward = await _reward(reward_id)
    await accounts_service.require_staff_of(actor, reward.community_id)
    if await RewardPicture.filter(reward_id=reward.id).delete():
        log.info("reward %s picture removed by user %s", reward.id, actor.id)
    return await get_reward(reward_id=reward.id)


async def get_picture(*, reward_id: int) -> RewardPicture:
    """The uploaded picture of a reward, for anyone (like the reward), or NotFound."""
    picture = await RewardPicture.get_or_none(reward_id=reward_id)
    if picture is None:
        raise NotFound("该礼品没有上传图片")
    return picture


# --- redeeming ---


def _new_code() -> str:
    return str(secrets.randbelow(10**PICKUP_CODE_DIGITS)).zfill(PICKUP_CODE_DIGITS)


async def new_redemption(reward: Reward, user_id: int, now: datetime) -> Redemption:
    """A waiting redemption with a fresh pickup code, in the caller's transaction."""
    for _ in range(CODE_ATTEMPTS):
        try:
            async with in_transaction():  # a savepoint: a code collision retries cleanly
                return await Redemption.create(
                    reward_id=reward.id,
                    user_id=user_id,
                    community_id=reward.community_id,
                    cost=reward.cost,
                    pickup_code=_new_code(),
                    status=PENDING,
                    created_at=now,
                    expires_at=now + timedelta(days=reward.pickup_days),
                )
        except IntegrityError:
            continue
    raise Conflict("系统繁忙，请稍后再试", code="busy")


def spend_reason(reward: Reward) -> str:
    return f"兑换「{reward.title}」"


async def _notify_ready(redemption: Redemption, reward: Reward) -> None:
    await enqueue(
        template_key="reward",
        context={
            "redemption_id": redemption.id,
            "reward_title": reward.title,
            "pickup_code": redemption.pickup_code,
            "pickup_place": reward.pickup_place or "所在社区居委会",
            "deadline": redemption.expires_at.isoformat(),
        },
        dedupe_key=f"redemption-ready:{redemption.id}",
        user_id=redemption.user_id,
    )


async def redeemable(*, reward_id: int, now: datetime) -> Reward:
    """The reward if it can be redeemed at `now`; NotOnSale or OutOfStock otherwise."""
    reward = await _reward(reward_id)
    if not is_on_sale(reward, now):
        raise NotOnSale()
    if reward.stock <= 0:
        raise OutOfStock()  # the quick answer: the guarded UPDATE of the redemption decides
    return reward


async def redeem_reward(*, user: User, reward_id: int) -> Redemption:
    """Take the points, one unit of stock and one of the user's allowance together, or none
    of them: the redemption waits for pickup with a fresh code, and the user is told."""
    now = clock.now()
    reward = await redeemable(reward_id=reward_id, now=now)
    redemption = await _redeem(reward=reward, user_id=user.id, now=now)
    redemption.reward = reward
    return redemption


async def _redeem(*, reward: Reward, user_id: int, now: datetime) -> Redemption:
    async with in_transaction():
        await RewardHolding.bulk_create(
            [RewardHolding(reward_id=reward.id, user_id=user_id, count=0)], ignore_conflicts=True
        )
        held = await RewardHolding.filter(
            reward_id=reward.id, user_id=user_id, count__lt=reward.per_user_limit
        ).update(count=F("count") + 1)
        if not held:
            raise LimitReached(f"每人限兑 {reward.per_user_limit} 份，您已达到上限")
        redemption = await new_redemption(reward, user_id, now)
        await ledger.spend_in_tx(
            user_id=user_id,
            amount=reward.cost,
            source_type=ledger.SOURCE_REWARD,
            source_id=str(redemption.id),
            reason=spend_reason(reward),
        )
        if not await Reward.filter(id=reward.id, stock__gte=1).update(stock=F("stock") - 1):
            raise OutOfStock()
        await _notify_ready(redemption, reward)
    return redemption


# --- after redeeming: verify, cancel, expire ---


def normalise_code(pickup_code: str) -> str:
    """A pickup code as typed (spaces, dashes) in its stored form."""
    return "".join(ch for ch in pickup_code if ch.isdigit())[: PICKUP_CODE_DIGITS + 1]


async def _by_code(pickup_code: str) -> Redemption:
    code = normalise_code(pickup_code)
    redemption = (
        await Redemption.get_or_none(pickup_code=code) if len(code) == PICKUP_CODE_DIGITS else None
    )
    if redemption is None:
        raise NotFound("领取码不存在，请核对后再试", code="pickup_code_not_found")
    return redemption


async def _for_staff(actor: User, redemption: Redemption) -> Redemption:
    await accounts_service.require_staff_of(actor, redemption.community_id)
    await redemption.fetch_related("reward", "user")
    return redemption


async def find_by_code(*, actor: User, pickup_code: str) -> Redemption:
    """The redemption with this pickup code (and its reward), for staff of its community."""
    return await _for_staff(actor, await _by_code(pickup_code))


async def get_redemption_for_staff(*, actor: User, redemption_id: int) -> Redemption:
    """A redemption (its reward and holder loaded) for staff of its community; verifying it
    still takes the code its holder shows."""
    return await _for_staff(actor, await _get_redemption(redemption_id))


async def verify_redemption(*, actor: User, pickup_code: str) -> Redemption:
    """Hand the reward over: a waiting redemption within its pickup days becomes fulfilled,
    once, however many staff scan the code at the same moment."""
    redemption = await find_by_code(actor=actor, pickup_code=pickup_code)
    now = clock.now()
    done = await Redemption.filter(id=redemption.id, status=PENDING, expires_at__gt=now).update(
        status=FULFILLED, fulfilled_at=now, fulfilled_by_id=actor.id
    )
    if not done:
        raise _closed_error(await Redemption.get(id=redemption.id))
    log.info("redemption %s verified by user %s", redemption.id, actor.id)
    return await _with_reward(redemption.id)


async def _close(
    redemption: Redemption, *, status: str, actor_id: int | None, reason: str
) -> Redemption:
    """End a waiting redemption, giving back its points, stock and allowance, or refuse."""
    now = clock.now()
    async with in_transaction():
        closed = await Redemption.filter(id=redemption.id, status=PENDING).update(
            status=status, closed_at=now, closed_by_id=actor_id, close_reason=reason
        )
        if not closed:
            raise _closed_error(await Redemption.get(id=redemption.id))
        await RewardHolding.filter(
            reward_id=redemption.reward_id, user_id=redemption.user_id, count__gte=1
        ).update(count=F("count") - 1)
        spent = await PointsLedgerEntry.get_or_none(
            user_id=redemption.user_id,
            source_type=ledger.SOURCE_REWARD,
            source_id=str(redemption.id),
        )
        title = await Reward.get(id=redemption.reward_id).values_list("title", flat=True)
        what = "已取消" if status == CANCELLED else "已过期"
        if spent is not None:
            await ledger.refund_in_tx(
                spent=spent,
                source_type=ledger.SOURCE_REFUND,
                reason=f"兑换「{title}」{what}，退还积分",
                actor_id=actor_id,
            )
        await Reward.filter(id=redemption.reward_id).update(stock=F("stock") + 1)
        await enqueue(
            template_key="notice",
            context={
                "title": f"兑换{what}",
                "summary": f"「{title}」{what}，{redemption.cost} 积分已退还",
                "body": f"您兑换的「{title}」{what}（{reason}），"
                f"{redemption.cost} 积分已退还到您的账户。",
                "url": f"/h5/points/redemptions/{redemption.id}",
                "page": "pages/points/index",
            },
            dedupe_key=f"redemption-closed:{redemption.id}",
            user_id=redemption.user_id,
        )
    return await _with_reward(redemption.id)


async def cancel_redemption(*, actor: User, redemption_id: int, reason: str) -> Redemption:
    """Staff cancel a waiting redemption: points, stock and allowance all come back, once."""
    redemption = await _get_redemption(redemption_id)
    await accounts_service.require_staff_of(actor, redemption.community_id)
    reason = clean_text(
        reason, field="reason", label="取消原因", min_length=REASON_MIN, max_length=REASON_MAX
    )
    result = await _close(redemption, status=CANCELLED, actor_id=actor.id, reason=reason)
    log.info("redemption %s cancelled by user %s", redemption.id, actor.id)
    return result


async def expire_unclaimed_redemptions(*, limit: int = BATCH_SIZE) -> int:
    """Expire redemptions past their pickup days, returning points and stock; safe to run
    twice at once. Returns how many it expired."""
    due = (
        await Redemption.filter(status=PENDING, expires_at__lte=clock.now())
        .order_by("expires_at", "id")
        .limit(limit)
    )
    expired = 0
    for redemption in due:
        try:
            await _close(redemption, status=EXPIRED, actor_id=None, reason="超过领取期限未领取")
        except Conflict:
            continue  # verified, cancelled or expired by someone else meanwhile
        expired += 1
    return expired


async def remind_pickup_deadlines(*, limit: int = BATCH_SIZE) -> int:
    """Remind each holder once when their pickup deadline is near; returns how many."""
    now = clock.now()
    horizon = now + timedelta(hours=get_settings().points_pickup_reminder_hours)
    due = (
        await Redemption.filter(
            status=PENDING, reminded=False, expires_at__gt=now, expires_at__lte=horizon
        )
        .order_by("expires_at", "id")
        .limit(limit)
        .prefetch_related("reward")
    )
    sent = 0
    for redemption in due:
        async with in_transaction():
            if not await Redemption.filter(id=redemption.id, reminded=False).update(reminded=True):
                continue
            reward = redemption.reward
            await enqueue(
                template_key="reward",
                context={
                    "redemption_id": redemption.id,
                    "reward_title": reward.title,
                    "pickup_code": redemption.pickup_code,
                    "pickup_place": reward.pickup_place or "所在社区居委会",
                    "deadline": redemption.expires_at.isoformat(),
                    "headline": "即将过期",
                },
                dedupe_key=f"redemption-deadline:{redemption.id}",
                user_id=redemption.user_id,
            )
            sent += 1
    return sent


# --- reading redemptions ---


async def _with_reward(redemption_id: int) -> Redemption:
    return await Redemption.get(id=redemption_id).prefetch_related("reward")


async def _get_redemption(redemption_id: int) -> Redemption:
    redemption = await Redemption.get_or_none(id=redemption_id)
    if redemption is None:
        raise NotFound("兑换记录不存在")
    return redemption


async def get_redemption(*, viewer: User, redemption_id: int) -> Redemption:
    """A redemption for its holder or staff of its community (NotFound for anyone else)."""
    redemption = await _get_redemption(redemption_id)
    if redemption.user_id != viewer.id and not await accounts_service.is_staff_of(
        viewer, redemption.community_id
    ):
        raise NotFound("兑换记录不存在")
    await redemption.fetch_related("reward")
    await _with_pictures([redemption.reward])
    return redemption


async def list_my_redemptions(*, user: User, page: PageRequest) -> Page[Redemption]:
    """The user's redemptions, newest first, with their rewards."""
    result = await paginate(Redemption.filter(user_id=user.id), page, descending=True)
    await Redemption.fetch_for_list(result.items, "reward")
    return result


async def list_redemptions(
    *, actor: User, community_id: int, status: str | None, page: PageRequest
) -> Page[Redemption]:
    """A community's redemptions for its staff, newest first, optionally in one status."""
    await accounts_service.require_staff_of(actor, community_id)
    query = Redemption.filter(community_id=community_id)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(fields={"status": "不支持的状态"})
        query = query.filter(status=status)
    result = await paginate(query, page, descending=True)
    await Redemption.fetch_for_list(result.items, "reward", "user")
    return result
