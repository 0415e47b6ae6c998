"""Micro-wishes (微心愿): one lifecycle for the API, the H5 pages and the bot.

pending_review → (staff) open | rejected → (anyone but the poster) claimed → (the claimer)
fulfilled → (the poster) closed. The poster may withdraw while nobody has claimed, the
claimer may release (back to open), the bot releases a claim not fulfilled in time, and
staff may remove an abusive wish. Every transition is one guarded UPDATE naming the
status it leaves (the claim: `status='open'` → `claimed`), so of any number of
simultaneous attempts across processes exactly one wins; each writes one history row.
Accepting a claimer, and what each viewer sees, is backend.wishes.contacts.

The per-person claim limit and the wait after giving a claim back are one counter row per
claimer moved by a guarded UPDATE in the same transaction as the claim; the daily claim
cap is a usage counter (backend.core.quota) in that transaction too. Locks are always taken
claimer row first, then the daily counter, then the wish, so two transitions of one person
never wait on each other in opposite orders.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images, quota, unguarded
from backend.core.clock import clock, local_midnight, local_text, local_today, to_local
from backend.core.config import get_settings
from backend.core.errors import Conflict, Invalid
from backend.core.text import clean_text
from backend.points import rules as points_rules
from backend.wishes import unguarded as unguarded_claim
from backend.wishes.contacts import REMOVABLE_STATUSES, claimed_by, get_wish, load, may_claim
from backend.wishes.events import notify, record
from backend.wishes.exceptions import (
    AlreadyClaimed,
    AlreadyFinal,
    CannotWithdraw,
    ClaimCooldown,
    ClaimLimitReached,
    ClaimsPerDayReached,
    NotClaimed,
    NotClaimer,
    NotEligible,
    NotFulfilled,
    NotOpen,
    NotPending,
    NotPoster,
    NotResident,
    NotUnitMember,
    OwnWish,
    StatusChanged,
    WishesPerDayReached,
)
from backend.wishes.models import Wish, WishClaimer, WishPhoto
from backend.wishes.schemas import (
    NOTE_MAX,
    NOTE_MIN,
    REASON_MAX,
    REASON_MIN,
    SHORT_MAX,
    WishIn,
)
from backend.wishes.views import WishDetail

POINTS_SOURCE = "wish"
MAX_NEEDED_BY_DAYS = 365
_UNCLAIMED: dict[str, Any] = {
    "status": "open",
    "claimer_id": None,
    "claimer_unit_id": None,
    "claimed_at": None,
    "claim_due_at": None,
    "accepted_at": None,
}

# --- checks that need the clock or the content ---


def _check_needed_by(needed_by: date | None) -> None:
    if needed_by is None:
        return
    today = local_today()
    if not today <= needed_by <= today + timedelta(days=MAX_NEEDED_BY_DAYS):
        raise Invalid(fields={"needed_by": "日期须在今天到一年之内"})


def _check_photo(photo: tuple[str, bytes] | None) -> tuple[str, bytes] | None:
    """The photo with the type its content shows (whatever was declared), or Invalid."""
    if photo is None:
        return None
    content = photo[1]
    return images.check_image(content, field="photo", label="照片"), content


def _claim_due(needed_by: date | None, now: datetime) -> datetime:
    """When an unfulfilled claim is released: after the configured days, or at the end of
    the day the wish is needed by if that comes first (and has not passed)."""
    settings = get_settings()
    due = now + timedelta(days=settings.wish_claim_days)
    if needed_by is not None:
        end_of_day = local_midnight(needed_by + timedelta(days=1))
        if now < end_of_day < due:
            due = end_of_day
    return due


# --- transitions ---


def _seconds_until(moment: datetime, now: datetime) -> str:
    return str(max(1, int((moment - now).total_seconds()) + 1))


async def _hold_claim_slot(user_id: int, now: datetime) -> None:
    settings = get_settings()
    cooldown = timedelta(minutes=settings.wish_claim_cooldown_minutes)
    # ON CONFLICT DO NOTHING: a first claim racing another first claim of the same person.
    await WishClaimer.bulk_create([WishClaimer(user_id=user_id)], ignore_conflicts=True)
    held = (
        await WishClaimer.filter(user_id=user_id, open_claims__lt=settings.wish_claim_limit)
        .filter(Q(released_at__isnull=True) | Q(released_at__lte=now - cooldown))
        .update(open_claims=F("open_claims") + 1)
    )
    if held:
        return
    row = await WishClaimer.get(user_id=user_id)
    if row.open_claims >= settings.wish_claim_limit:
        raise ClaimLimitReached()
    until = row.released_at + cooldown
    raise ClaimCooldown(
        f"您刚有一个心愿认领已放弃或超时释放，为避免反复认领，"
        f"请于 {local_text(until, '%H:%M')} 后再认领新的心愿",
        headers={"Retry-After": _seconds_until(until, now)},
    )


async def _count_claim_today(user_id: int, now: datetime) -> None:
    settings = get_settings()
    limit = settings.wish_claims_per_day
    if not await quota.take(f"wish-claim:{user_id}", bucket=quota.local_day(now), limit=limit):
        raise ClaimsPerDayReached(
            f"您今天已认领 {limit} 个心愿，达到每日上限，请明天再来认领",
            headers={"Retry-After": _seconds_until(_next_midnight(now), now)},
        )


def _next_midnight(now: datetime) -> datetime:
    return local_midnight(to_local(now).date() + timedelta(days=1))


async def _free_claim_slot(user_id: int, *, released_at: datetime | None = None) -> None:
    """Give back an open claim; `released_at` (a release, not a fulfilment) starts the wait."""
    values: dict[str, Any] = {"open_claims": F("open_claims") - 1}
    if released_at is not None:
        values["released_at"] = released_at
    await WishClaimer.filter(user_id=user_id, open_claims__gt=0).update(**values)


def _not_claimable(status: str | None) -> Conflict:
    if status in ("open", "claimed", "fulfilled", "closed"):
        return AlreadyClaimed()
    return NotOpen()


async def _take_open_wish(wish_id: int, values: dict[str, Any]) -> int:
    if unguarded.enabled("claim"):
        return await unguarded_claim.take_wish(wish_id, values)
    return await Wish.filter(id=wish_id, status="open").update(**values)


async def submit_wish(*, user: User, data: WishIn) -> WishDetail:
    """Record a resident's wish in their own community, waiting for staff review; at most the
    configured number per person per local day."""
    if user.community_id is None or user.community_id != data.community_id:
        raise NotResident()
    _check_needed_by(data.needed_by)
    now = clock.now()
    async with in_transaction():
        limit = get_settings().wishes_per_day
        if not await quota.take(f"wish-post:{user.id}", bucket=quota.local_day(now), limit=limit):
            raise WishesPerDayReached(
                f"您今天已发布 {limit} 个心愿，达到每日上限，请明天再发布",
                headers={"Retry-After": _seconds_until(_next_midnight(now), now)},
            )
        wish = await Wish.create(
            poster_id=user.id, status="pending_review", created_at=now, **data.model_dump()
        )
        await record(
            wish,
            action="submitted",
            from_status=None,
            to_status="pending_review",
            actor=user,
            role="poster",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def review_wish(
    *, actor: User, wish_id: int, approve: bool, reason: str | None = None
) -> WishDetail:
    """Staff of the wish's community make it public (open) or reject it with a reason, once."""
    wish = await load(wish_id)
    await accounts_service.require_staff_of(actor, wish.community_id)
    reason = clean_text(reason, field="reason", label="原因", max_length=SHORT_MAX)
    if not approve and len(reason) < REASON_MIN:
        raise Invalid(fields={"reason": f"不通过时请填写原因（至少 {REASON_MIN} 个字）"})
    to_status = "open" if approve else "rejected"
    async with in_transaction():
        changed = await Wish.filter(id=wish.id, status="pending_review").update(
            status=to_status, review_reason=reason, reviewed_by_id=actor.id, reviewed_at=clock.now()
        )
        if not changed:
            raise NotPending()
        event = await record(
            wish,
            action="approved" if approve else "rejected",
            from_status="pending_review",
            to_status=to_status,
            actor=actor,
            role="staff",
            note=reason,
        )
        await notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="approved" if approve else "rejected",
            note="心愿已公开，等待热心人认领" if approve else f"原因：{reason}",
        )
    return await get_wish(viewer=actor, wish_id=wish.id)


async def withdraw_wish(*, user: User, wish_id: int) -> WishDetail:
    """The poster takes back a wish nobody has claimed."""
    wish = await load(wish_id)
    if wish.poster_id != user.id:
        raise NotPoster()
    async with in_transaction():
        from_status = wish.status
        changed = await Wish.filter(
            id=wish.id, poster_id=user.id, status=from_status, status__in=("pending_review", "open")
        ).update(status="withdrawn")
        if not changed:
            raise CannotWithdraw()
        await record(
            wish,
            action="withdrawn",
            from_status=from_status,
            to_status="withdrawn",
            actor=user,
            role="poster",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def claim_wish(*, user: User, wish_id: int, unit_id: int | None = None) -> WishDetail:
    """First claim wins: exactly one of any number of simultaneous claims succeeds; the claimer
    never holds more than the configured number of open claims, waits the cooldown after a
    release and makes at most the daily number of claims. Shares nothing personal yet."""
    wish = await load(wish_id)
    if wish.poster_id == user.id:
        raise OwnWish()
    if not await may_claim(user):
        raise NotEligible()
    if unit_id is not None and user.unit_id != unit_id:
        raise NotUnitMember()
    # Answers the losers of a race early; the guarded UPDATE below decides.
    if wish.status != "open":
        raise _not_claimable(wish.status)
    now = clock.now()
    async with in_transaction():
        await _hold_claim_slot(user.id, now)
        await _count_claim_today(user.id, now)
        taken = await _take_open_wish(
            wish.id,
            {
                "status": "claimed",
                "claimer_id": user.id,
                "claimer_unit_id": unit_id,
                "claimed_at": now,
                "claim_due_at": _claim_due(wish.needed_by, now),
            },
        )
        if not taken:
            raise _not_claimable(
                await Wish.filter(id=wish.id).first().values_list("status", flat=True)
            )
        wish = await load(wish.id)
        event = await record(
            wish,
            action="claimed",
            from_status="open",
            to_status="claimed",
            actor=user,
            role="claimer",
        )
        await notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="claimed",
            note=f"认领方：{claimed_by(wish)}",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def release_wish(*, user: User, wish_id: int) -> WishDetail:
    """The claimer gives a claimed wish back to the board (status open again, nothing shared
    with the next claimer) and waits the cooldown before claiming again."""
    wish = await load(wish_id)
    if wish.claimer_id != user.id:
        raise NotClaimer()
    async with in_transaction():
        await _free_claim_slot(user.id, released_at=clock.now())
        changed = await Wish.filter(id=wish.id, status="claimed", claimer_id=user.id).update(
            **_UNCLAIMED
        )
        if not changed:
            raise NotClaimed()
        event = await record(
            wish,
            action="released",
            from_status="claimed",
            to_status="open",
            actor=user,
            role="claimer",
        )
        await notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="released",
            note="认领人已放弃，心愿重新开放认领",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def fulfil_wish(
    *, user: User, wish_id: int, note: str, photo: tuple[str, bytes] | None = None
) -> WishDetail:
    """The claimer reports the wish done (with a note and an optional photo), once."""
    note = clean_text(
        note,
        field="note",
        label="完成情况",
        min_length=NOTE_MIN,
        max_length=NOTE_MAX,
        multiline=True,
    )
    photo = _check_photo(photo)
    wish = await load(wish_id)
    if wish.claimer_id != user.id:
        raise NotClaimer()
    async with in_transaction():
        await _free_claim_slot(user.id)
        now = clock.now()
        changed = await Wish.filter(id=wish.id, status="claimed", claimer_id=user.id).update(
            status="fulfilled", fulfil_note=note, fulfilled_at=now
        )
        if not changed:
            raise NotClaimed()
        if photo is not None:
            await WishPhoto.create(
                wish_id=wish.id, content_type=photo[0], content=photo[1], created_at=now
            )
        event = await record(
            wish,
            action="fulfilled",
            from_status="claimed",
            to_status="fulfilled",
            actor=user,
            role="claimer",
            note=note,
        )
        await notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="fulfilled",
            note="认领人已完成，请确认并评价",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def confirm_wish(
    *, user: User, wish_id: int, rating: int, thanks: str | None = None
) -> WishDetail:
    """The poster confirms a fulfilled wish: rated, thanked, and the claimer paid points once."""
    if not (isinstance(rating, int) and 1 <= rating <= 5):
        raise Invalid(fields={"rating": "请选择 1–5 星"})
    thanks = clean_text(thanks, field="thanks", label="感谢的话", max_length=SHORT_MAX)
    wish = await load(wish_id)
    if wish.poster_id != user.id:
        raise NotPoster()
    async with in_transaction():
        changed = await Wish.filter(id=wish.id, status="fulfilled", poster_id=user.id).update(
            status="closed", rating=rating, thanks=thanks, closed_at=clock.now()
        )
        if not changed:
            raise NotFulfilled()
        # Our UPDATE holds the row, and a fulfilled wish's claimer can no longer change.
        wish = await load(wish.id)
        paid = await points_rules.award_by_rule_in_tx(
            user_id=wish.claimer_id,
            event_type="wish_fulfilled",
            source_type=POINTS_SOURCE,
            source_id=str(wish.id),
            reason=f"完成微心愿：{wish.title}"[:255],
        )
        event = await record(
            wish,
            action="closed",
            from_status="fulfilled",
            to_status="closed",
            actor=user,
            role="poster",
            note=f"{rating} 星" + (f"：{thanks}" if thanks else ""),
        )
        message = thanks or "心愿人已确认完成，感谢您的帮助"
        points = paid.delta if paid is not None else 0
        await notify(
            wish,
            event,
            user_id=wish.claimer_id,
            status="closed",
            note=f"{message}（+{points} 积分）" if points else message,
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def remove_wish(*, actor: User, wish_id: int, reason: str) -> WishDetail:
    """Staff of the wish's community close an abusive wish in any status that is not final."""
    reason = clean_text(
        reason, field="reason", label="关闭原因", min_length=REASON_MIN, max_length=REASON_MAX
    )
    wish = await load(wish_id)
    await accounts_service.require_staff_of(actor, wish.community_id)
    if wish.status not in REMOVABLE_STATUSES:
        raise AlreadyFinal()
    async with in_transaction():
        guarded = Wish.filter(id=wish.id, status=wish.status)
        if wish.claimer_id is None:
            guarded = guarded.filter(claimer_id__isnull=True)
        else:
            guarded = guarded.filter(claimer_id=wish.claimer_id)
            if wish.status == "claimed":
                await _free_claim_slot(wish.claimer_id)
        changed = await guarded.update(
            status="removed", review_reason=reason, closed_at=clock.now(), accepted_at=None
        )
        if not changed:
            raise StatusChanged()
        event = await record(
            wish,
            action="removed",
            from_status=wish.status,
            to_status="removed",
            actor=actor,
            role="staff",
            note=reason,
        )
        note = f"心愿已被社区工作人员关闭：{reason}"
        await notify(wish, event, user_id=wish.poster_id, status="removed", note=note)
        if wish.claimer_id is not None:
            await notify(wish, event, user_id=wish.claimer_id, status="removed", note=note)
    return await get_wish(viewer=actor, wish_id=wish.id)


class _Lost(Exception):
    """Another process released or moved this claim first: nothing to do."""


async def release_overdue_claims(*, batch: int = 200) -> int:
    """Reopen claims not fulfilled by their due time and tell poster and claimer; safe to run
    twice or in parallel (each release is one guarded UPDATE). Returns how many it released."""
    now = clock.now()
    overdue = (
        await Wish.filter(status="claimed", claim_due_at__lt=now)
        .order_by("claim_due_at")
        .limit(batch)
        .values_list("id", "claimer_id")
    )
    released = 0
    for wish_id, claimer_id in overdue:
        try:
            async with in_transaction():
                await _free_claim_slot(claimer_id, released_at=now)
                changed = await Wish.filter(
                    id=wish_id, status="claimed", claimer_id=claimer_id, claim_due_at__lt=now
                ).update(**_UNCLAIMED)
                if not changed:
                    raise _Lost()
                wish = await Wish.get(id=wish_id)
                event = await record(
                    wish,
                    action="auto_released",
                    from_status="claimed",
                    to_status="open",
                    actor=None,
                    role="system",
                )
                await notify(
                    wish,
                    event,
                    user_id=wish.poster_id,
                    status="released",
                    note="认领人未在期限内完成，心愿已重新开放认领",
                )
                await notify(
                    wish,
                    event,
                    user_id=claimer_id,
                    status="released",
                    note="您的认领已超过期限，心愿已重新开放",
                )
        except _Lost:
            continue
        released += 1
    return released
