"""Micro-wishes (微心愿): one lifecycle for the API, the H5 pages and the bot.

pending_review → (staff) open | rejected → (anyone but the poster) claimed → (the claimer)
fulfilled → (the poster) closed. The poster may withdraw while nobody has claimed, the
claimer may release (back to open), the bot releases a claim not fulfilled in time, and
staff may remove an abusive wish. Every transition is one guarded UPDATE naming the
status it leaves (the claim: `status='open'` → `claimed`), so of any number of
simultaneous attempts across processes exactly one wins; each writes one history row.

The per-person claim limit and the wait after giving a claim back are one counter row per
claimer moved by a guarded UPDATE in the same transaction as the claim; the daily claim
cap is a usage counter (backend.core.quota) in that transaction too. Locks are always taken
claimer row first, then the daily counter, then the wish, so two transitions of one person
never wait on each other in opposite orders.

Privacy (PIPL): the public sees reviewed wishes only, the poster's name masked and
phone-like or ID-like strings in the text masked, never a phone or an address. Claiming
alone shares nothing personal: the claimer sees the community's work contact and the
poster's masked phone. The poster's name, phone and address reach the claimer only when
the poster (or staff for them) accepts that claimer, never when the poster chose to be
reached through the community; each acceptance is a history row, and giving the claim back
clears it, so the next claimer starts masked again. Staff always see the contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images, quota
from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, Forbidden, Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.outbox import enqueue
from backend.core.pagination import PageOut, PageRequest, paginate
from backend.core.security import decrypt_field, mask_name, mask_phone
from backend.core.text import clean_text
from backend.points import service as points_service
from backend.wishes.exceptions import (
    AlreadyClaimed,
    CannotWithdraw,
    ClaimCooldown,
    ClaimerChanged,
    ClaimLimitReached,
    ClaimsPerDayReached,
    NotClaimed,
    NotClaimer,
    NotEligible,
    NotFulfilled,
    NotOpen,
    NotPending,
    NotPoster,
    NotPosterOrStaff,
    NotResident,
    NotUnitMember,
    OwnWish,
    StatusChanged,
    WishesPerDayReached,
)
from backend.wishes.models import (
    PUBLIC_STATUSES,
    WISH_CATEGORIES,
    Wish,
    WishClaimer,
    WishEvent,
    WishPhoto,
)
from backend.wishes.schemas import (
    CommunityContact,
    Contact,
    Flag,
    UnitCreditOut,
    WishDetailOut,
    WishEventOut,
    WishOut,
)

POINTS_SOURCE = "wish"
MAX_NEEDED_BY_DAYS = 365

STATUS_LABELS = {
    "pending_review": "待审核",
    "open": "待认领",
    "rejected": "未通过",
    "claimed": "已认领",
    "fulfilled": "待确认",
    "closed": "已圆梦",
    "withdrawn": "已撤回",
    "removed": "已关闭",
}
ACTION_LABELS = {
    "submitted": "提交心愿",
    "approved": "审核通过",
    "rejected": "审核未通过",
    "claimed": "认领心愿",
    "contact_shared": "接受认领，告知联系方式",
    "accepted": "接受认领（由社区联系）",
    "released": "放弃认领",
    "auto_released": "超时未完成，自动释放",
    "fulfilled": "完成心愿",
    "closed": "确认并评价",
    "withdrawn": "撤回心愿",
    "removed": "工作人员关闭",
}
ACTOR_LABELS = {
    "poster": "心愿人",
    "claimer": "认领人",
    "staff": "社区工作人员",
    "system": "系统",
}
# Statuses staff may still close; the others are final.
REMOVABLE_STATUSES = ("pending_review", "open", "claimed", "fulfilled")
# Statuses in which the claimer works with the poster and so sees their contact.
CONTACT_STATUSES = ("claimed", "fulfilled")
_UNCLAIMED: dict[str, Any] = {
    "status": "open",
    "claimer_id": None,
    "claimer_unit_id": None,
    "claimed_at": None,
    "claim_due_at": None,
    "accepted_at": None,
}
CONTACT_VIA = ("direct", "community")

# --- personal data in free text: caught at review, masked for the public ---

_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"(?![0-9A-Za-z])"
)
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")
_PATTERNS = (("id_number", _ID_NUMBER), ("phone", _MOBILE), ("landline", _LANDLINE))


def find_personal_data(text: str, *, field: str = "description") -> list[Flag]:
    """Phone-number-like and ID-number-like stretches of `text`, in order."""
    found: list[Flag] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < f.end and f.start < match.end() for f in found):
                continue
            found.append(
                Flag(
                    kind=kind,
                    field=field,
                    text=match.group(),
                    start=match.start(),
                    end=match.end(),
                )
            )
    return sorted(found, key=lambda f: f.start)


def _masked(flag: Flag) -> str:
    if flag.kind == "phone":
        return mask_phone(re.sub(r"\D", "", flag.text)[-11:]) or ""
    if flag.kind == "id_number":
        return flag.text[:6] + "*" * 8 + flag.text[-4:]
    area, number = flag.text.split("-", 1)
    return f"{area}-****{number[-4:]}"


def redact_personal(text: str) -> str:
    """`text` with every phone-like and ID-like stretch masked (138****5678)."""
    for flag in reversed(find_personal_data(text)):
        text = text[: flag.start] + _masked(flag) + text[flag.end :]
    return text


def highlight_segments(text: str) -> list[tuple[str, str | None]]:
    """`text` cut into (piece, kind) with kind set on the stretches that look personal."""
    segments: list[tuple[str, str | None]] = []
    at = 0
    for flag in find_personal_data(text):
        if flag.start > at:
            segments.append((text[at : flag.start], None))
        segments.append((flag.text, flag.kind))
        at = flag.end
    if at < len(text):
        segments.append((text[at:], None))
    return segments


# --- input checks shared by the API and the pages ---


def local_today() -> date:
    return clock.now().astimezone(ZoneInfo(get_settings().timezone)).date()


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
        zone = ZoneInfo(settings.timezone)
        end_of_day = datetime.combine(needed_by + timedelta(days=1), time(0), tzinfo=zone)
        if now < end_of_day < due:
            due = end_of_day.astimezone(UTC)
    return due


# --- loading and who is looking ---


@dataclass(frozen=True)
class Access:
    """How the viewer relates to a wish."""

    user: User | None
    poster: bool
    claimer: bool
    staff: bool
    may_claim: bool

    @property
    def viewer(self) -> str:
        if self.staff:
            return "staff"
        if self.poster:
            return "poster"
        if self.claimer:
            return "claimer"
        return "public"


def _wishes():
    return Wish.all().select_related("community", "poster", "claimer", "claimer_unit")


async def _load(wish_id: int) -> Wish:
    wish = await _wishes().filter(id=wish_id).first() if may_exist(wish_id) else None
    if wish is None:
        raise NotFound("心愿不存在或已删除")
    return wish


async def _may_claim(user: User) -> bool:
    """Residents, party members and unit members may claim (their own wishes aside)."""
    if user.community_id is not None or user.unit_id is not None:
        return True
    return await accounts_service.has_role(user, "party_member")


async def _access(wish: Wish, user: User | None) -> Access:
    if user is None:
        return Access(None, poster=False, claimer=False, staff=False, may_claim=False)
    return Access(
        user,
        poster=wish.poster_id == user.id,
        claimer=wish.claimer_id == user.id,
        staff=await accounts_service.is_staff_of(user, wish.community_id),
        may_claim=wish.poster_id != user.id and await _may_claim(user),
    )


async def _visible(wish_id: int, user: User | None) -> tuple[Wish, Access]:
    wish = await _load(wish_id)
    access = await _access(wish, user)
    if wish.status not in PUBLIC_STATUSES and not (access.poster or access.staff):
        # An unreviewed or rejected wish does not exist for anyone else.
        raise NotFound("心愿不存在或已删除")
    return wish, access


def _claimed_by(wish: Wish) -> str | None:
    if wish.claimer_unit_id is not None:
        return wish.claimer_unit.name
    if wish.claimer_id is not None:
        return mask_name(wish.claimer.nickname)
    return None


def _summary(wish: Wish, *, redact: bool) -> dict[str, Any]:
    shown = redact_personal if redact else str
    return {
        "id": wish.id,
        "community_id": wish.community_id,
        "community_name": wish.community.name,
        "title": shown(wish.title),
        "description": shown(wish.description),
        "category": wish.category,
        "needed_by": wish.needed_by,
        "status": wish.status,
        "poster_name": mask_name(wish.poster.nickname),
        "claimed_by": _claimed_by(wish),
        "claimer_unit_id": wish.claimer_unit_id,
        "rating": wish.rating,
        "created_at": wish.created_at,
        "claimed_at": wish.claimed_at,
        "fulfilled_at": wish.fulfilled_at,
        "closed_at": wish.closed_at,
    }


def summarize(wish: Wish, *, redact: bool = True) -> WishOut:
    """The list view of a loaded wish (masked for the public unless `redact` is False)."""
    return WishOut(**_summary(wish, redact=redact))


def _actions(wish: Wish, access: Access) -> list[str]:
    status = wish.status
    wanted = [
        ("claim", status == "open" and access.may_claim),
        (
            "accept",
            (access.poster or access.staff) and status == "claimed" and not wish.accepted_at,
        ),
        ("withdraw", access.poster and status in ("pending_review", "open")),
        ("fulfil", access.claimer and status == "claimed"),
        ("release", access.claimer and status == "claimed"),
        ("confirm", access.poster and status == "fulfilled"),
        ("review", access.staff and status == "pending_review"),
        ("remove", access.staff and status in REMOVABLE_STATUSES),
    ]
    return [name for name, allowed in wanted if allowed]


def _working_claimer(wish: Wish, access: Access) -> bool:
    return access.claimer and wish.status in CONTACT_STATUSES


def _sees_contact(wish: Wish, access: Access) -> bool:
    """Staff, or the claimer the poster accepted (when the poster did not choose the community)."""
    accepted = wish.accepted_at is not None and wish.contact_via == "direct"
    return access.staff or (accepted and _working_claimer(wish, access))


def _contact(wish: Wish, access: Access) -> Contact | None:
    if not _sees_contact(wish, access):
        return None
    return Contact(
        name=wish.poster.nickname,
        phone=decrypt_field(wish.poster.phone_encrypted),
        address=wish.address,
    )


def _community_contact(wish: Wish, access: Access) -> CommunityContact | None:
    if not (access.staff or _working_claimer(wish, access)):
        return None
    community = wish.community
    if not (community.contact_name or community.contact_phone):
        return None
    return CommunityContact(
        community_name=community.name, name=community.contact_name, phone=community.contact_phone
    )


def _masked_poster_phone(wish: Wish, access: Access) -> str | None:
    if not _working_claimer(wish, access):
        return None
    return mask_phone(decrypt_field(wish.poster.phone_encrypted))


async def _history(wish: Wish) -> list[WishEventOut]:
    return [
        WishEventOut(
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            actor=ACTOR_LABELS.get(event.actor_role, event.actor_role),
            note=event.note,
            created_at=event.created_at,
        )
        for event in await WishEvent.filter(wish_id=wish.id).order_by("id")
    ]


def _flags(wish: Wish) -> list[Flag]:
    return [
        *find_personal_data(wish.title, field="title"),
        *find_personal_data(wish.description, field="description"),
        *find_personal_data(wish.address, field="address"),
    ]


async def describe(wish: Wish, access: Access, *, with_history: bool = True) -> WishDetailOut:
    """The detail view of a loaded wish for the viewer `access` describes."""
    party = access.poster or access.claimer or access.staff
    # A number the poster typed into the text is theirs too: masked until they accept.
    unmasked = access.poster or _sees_contact(wish, access)
    return WishDetailOut(
        **_summary(wish, redact=not unmasked),
        viewer=access.viewer,
        actions=_actions(wish, access),
        contact_via=wish.contact_via,
        claimer_id=wish.claimer_id if party else None,
        accepted_at=wish.accepted_at if party else None,
        contact=_contact(wish, access),
        poster_phone_masked=_masked_poster_phone(wish, access),
        community_contact=_community_contact(wish, access),
        claim_due_at=wish.claim_due_at if party else None,
        review_reason=wish.review_reason if (access.poster or access.staff) else None,
        fulfil_note=wish.fulfil_note if party else None,
        thanks=wish.thanks if party else None,
        has_photo=party and await WishPhoto.exists(wish_id=wish.id),
        history=await _history(wish) if with_history and (access.poster or access.staff) else None,
        flags=_flags(wish) if access.staff else None,
    )


# --- reading ---


async def get_wish(*, viewer: User | None, wish_id: int) -> WishDetailOut:
    """A wish as `viewer` may see it; NotFound for unreviewed wishes of others."""
    wish, access = await _visible(wish_id, viewer)
    return await describe(wish, access)


async def list_wishes(
    *,
    page: PageRequest,
    community_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
) -> PageOut[WishOut]:
    """Reviewed wishes for the public board, newest first, masked."""
    if status is not None and status not in PUBLIC_STATUSES:
        raise Invalid(fields={"status": "取值不在允许范围内"})
    if category is not None and category not in WISH_CATEGORIES:
        raise Invalid(fields={"category": "取值不在允许范围内"})
    query = _wishes().filter(status__in=[status] if status else PUBLIC_STATUSES)
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if category:
        query = query.filter(category=category)
    result = await paginate(query, page, descending=True)
    return PageOut[WishOut](
        items=[summarize(w) for w in result.items], next_cursor=result.next_cursor
    )


async def list_my_wishes(*, user: User, page: PageRequest) -> PageOut[WishOut]:
    """The wishes `user` posted, in every status, newest first."""
    result = await paginate(_wishes().filter(poster_id=user.id), page, descending=True)
    return PageOut[WishOut](
        items=[summarize(w, redact=False) for w in result.items], next_cursor=result.next_cursor
    )


async def list_my_claims(*, user: User, page: PageRequest) -> PageOut[WishOut]:
    """The wishes `user` claims or has fulfilled, newest first."""
    result = await paginate(_wishes().filter(claimer_id=user.id), page, descending=True)
    items = []
    for wish in result.items:
        access = Access(user, poster=False, claimer=True, staff=False, may_claim=False)
        items.append(summarize(wish, redact=not _sees_contact(wish, access)))
    return PageOut[WishOut](items=items, next_cursor=result.next_cursor)


async def staff_scope(*, actor: User, community_id: int | None = None) -> list[int] | None:
    """The communities `actor` may see as staff, narrowed to `community_id` when given."""
    if community_id is not None:
        await accounts_service.require_staff_of(actor, community_id)
        return [community_id]
    communities = await accounts_service.staff_community_ids(actor)
    if communities == []:
        raise Forbidden("只有社区工作人员可以查看")
    return communities


async def list_staff_wishes(
    *, actor: User, page: PageRequest, community_id: int | None = None, status: str | None = None
) -> PageOut[WishDetailOut]:
    """Wishes of the communities `actor` is staff of (oldest first: a review queue)."""
    communities = await staff_scope(actor=actor, community_id=community_id)
    query = _wishes()
    if communities is not None:
        query = query.filter(community_id__in=communities)
    if status is not None:
        query = query.filter(status=status)
    result = await paginate(query, page)
    items = []
    for wish in result.items:
        access = Access(
            actor,
            poster=wish.poster_id == actor.id,
            claimer=wish.claimer_id == actor.id,
            staff=True,
            may_claim=False,
        )
        items.append(await describe(wish, access, with_history=False))
    return PageOut[WishDetailOut](items=items, next_cursor=result.next_cursor)


async def get_wish_photo(*, viewer: User, wish_id: int) -> WishPhoto:
    """The fulfilment photo, for the poster, the claimer and staff only."""
    wish, access = await _visible(wish_id, viewer)
    photo = await WishPhoto.get_or_none(wish_id=wish.id)
    if not (access.poster or access.claimer or access.staff) or photo is None:
        raise NotFound("没有照片")
    return photo


async def unit_credits(*, actor: User, community_id: int | None = None) -> list[UnitCreditOut]:
    """Wishes claimed on behalf of each resident unit, by status (staff reports)."""
    communities = await staff_scope(actor=actor, community_id=community_id)
    query = Wish.filter(
        claimer_unit_id__isnull=False, status__in=("claimed", "fulfilled", "closed")
    )
    if communities is not None:
        query = query.filter(community_id__in=communities)
    rows = (
        await query.annotate(n=Count("id"))
        .group_by("claimer_unit_id", "claimer_unit__name", "status")
        .values("claimer_unit_id", "claimer_unit__name", "status", "n")
    )
    credits: dict[int, UnitCreditOut] = {}
    for row in rows:
        credit = credits.setdefault(
            row["claimer_unit_id"],
            UnitCreditOut(
                unit_id=row["claimer_unit_id"],
                unit_name=row["claimer_unit__name"],
                claimed=0,
                fulfilled=0,
                closed=0,
            ),
        )
        setattr(credit, row["status"], getattr(credit, row["status"]) + row["n"])
    return sorted(credits.values(), key=lambda c: (-c.closed, -c.fulfilled, c.unit_id))


# --- transitions ---


async def _record(
    wish: Wish,
    *,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: User | None,
    role: str,
    note: str = "",
) -> WishEvent:
    return await WishEvent.create(
        wish_id=wish.id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.id if actor else None,
        actor_role=role,
        note=note[:512],
        created_at=clock.now(),
    )


async def _notify(wish: Wish, event: WishEvent, *, user_id: int, status: str, note: str) -> None:
    await enqueue(
        template_key="wish",
        context={"wish_id": wish.id, "wish_title": wish.title, "status": status, "note": note},
        dedupe_key=f"wish:{wish.id}:{event.id}:{user_id}",
        user_id=user_id,
    )


def _local_clock(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(get_settings().timezone)).strftime("%H:%M")


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
        f"请于 {_local_clock(until)} 后再认领新的心愿",
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
    zone = ZoneInfo(get_settings().timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=zone).astimezone(UTC)


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
    settings = get_settings()
    if settings.env == "dev" and settings.test_unguarded_claim:
        # The race test's control case: trust the status read before the transaction
        # (read-check-write), the bug the guarded statement exists to prevent.
        return await Wish.filter(id=wish_id).update(**values)
    return await Wish.filter(id=wish_id, status="open").update(**values)


async def submit_wish(
    *,
    user: User,
    community_id: int,
    title: str,
    description: str,
    category: str,
    needed_by: date | None = None,
    address: str = "",
    contact_via: str = "direct",
) -> WishDetailOut:
    """Record a resident's wish in their own community, waiting for staff review; at most the
    configured number per person per local day."""
    if user.community_id is None or user.community_id != community_id:
        raise NotResident()
    values = {
        "title": clean_text(title, field="title", label="标题", min_length=2, max_length=40),
        "description": clean_text(
            description,
            field="description",
            label="心愿内容",
            min_length=5,
            max_length=500,
            multiline=True,
        ),
        "address": clean_text(address, field="address", label="服务地点", max_length=100),
    }
    if category not in WISH_CATEGORIES:
        raise Invalid(fields={"category": "请选择心愿类别"})
    if contact_via not in CONTACT_VIA:
        raise Invalid(fields={"contact_via": "请选择联系方式"})
    _check_needed_by(needed_by)
    now = clock.now()
    async with in_transaction():
        limit = get_settings().wishes_per_day
        if not await quota.take(f"wish-post:{user.id}", bucket=quota.local_day(now), limit=limit):
            raise WishesPerDayReached(
                f"您今天已发布 {limit} 个心愿，达到每日上限，请明天再发布",
                headers={"Retry-After": _seconds_until(_next_midnight(now), now)},
            )
        wish = await Wish.create(
            community_id=community_id,
            poster_id=user.id,
            category=category,
            needed_by=needed_by,
            contact_via=contact_via,
            status="pending_review",
            created_at=now,
            **values,
        )
        await _record(
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
) -> WishDetailOut:
    """Staff of the wish's community make it public (open) or reject it with a reason, once."""
    wish = await _load(wish_id)
    await accounts_service.require_staff_of(actor, wish.community_id)
    reason = clean_text(reason, field="reason", label="原因", max_length=200)
    if not approve and len(reason) < 2:
        raise Invalid(fields={"reason": "不通过时请填写原因（至少 2 个字）"})
    to_status = "open" if approve else "rejected"
    async with in_transaction():
        changed = await Wish.filter(id=wish.id, status="pending_review").update(
            status=to_status, review_reason=reason, reviewed_by_id=actor.id, reviewed_at=clock.now()
        )
        if not changed:
            raise NotPending()
        event = await _record(
            wish,
            action="approved" if approve else "rejected",
            from_status="pending_review",
            to_status=to_status,
            actor=actor,
            role="staff",
            note=reason,
        )
        await _notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="approved" if approve else "rejected",
            note="心愿已公开，等待热心人认领" if approve else f"原因：{reason}",
        )
    return await get_wish(viewer=actor, wish_id=wish.id)


async def withdraw_wish(*, user: User, wish_id: int) -> WishDetailOut:
    """The poster takes back a wish nobody has claimed."""
    wish = await _load(wish_id)
    if wish.poster_id != user.id:
        raise NotPoster()
    async with in_transaction():
        from_status = wish.status
        changed = await Wish.filter(
            id=wish.id, poster_id=user.id, status=from_status, status__in=("pending_review", "open")
        ).update(status="withdrawn")
        if not changed:
            raise CannotWithdraw()
        await _record(
            wish,
            action="withdrawn",
            from_status=from_status,
            to_status="withdrawn",
            actor=user,
            role="poster",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def claim_wish(*, user: User, wish_id: int, unit_id: int | None = None) -> WishDetailOut:
    """First claim wins: exactly one of any number of simultaneous claims succeeds; the claimer
    never holds more than the configured number of open claims, waits the cooldown after a
    release and makes at most the daily number of claims. Shares nothing personal yet."""
    wish = await _load(wish_id)
    if wish.poster_id == user.id:
        raise OwnWish()
    if not await _may_claim(user):
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
        wish = await _load(wish.id)
        event = await _record(
            wish,
            action="claimed",
            from_status="open",
            to_status="claimed",
            actor=user,
            role="claimer",
        )
        await _notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="claimed",
            note=f"认领方：{_claimed_by(wish)}",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def accept_wish(*, actor: User, wish_id: int, claimer_id: int) -> WishDetailOut:
    """The poster, or staff of the wish's community for them, accepts the current claimer
    `claimer_id`: the poster's contact is shared with that claimer (unless the poster chose
    to be reached through the community), recorded once in the history; accepting again is
    a no-op."""
    if not may_exist(claimer_id):
        raise Invalid(fields={"claimer_id": "应为认领人编号"})
    wish, access = await _visible(wish_id, actor)
    if access.poster:
        role = "poster"
    elif access.staff:
        role = "staff"
    else:
        raise NotPosterOrStaff()
    async with in_transaction():
        accepted = await Wish.filter(
            id=wish.id, status="claimed", claimer_id=claimer_id, accepted_at__isnull=True
        ).update(accepted_at=clock.now())
        if accepted:
            wish = await _load(wish.id)
            await _record_acceptance(wish, actor=actor, role=role)
        else:
            current = await Wish.filter(id=wish.id).first().values("status", "claimer_id")
            if current["status"] != "claimed":
                raise NotClaimed()
            if current["claimer_id"] != claimer_id:
                raise ClaimerChanged()
            # Already accepted for this claimer: the contact is shared, nothing more to do.
    return await get_wish(viewer=actor, wish_id=wish.id)


async def _record_acceptance(wish: Wish, *, actor: User, role: str) -> None:
    by = "心愿人" if role == "poster" else "社区工作人员代心愿人"
    claimer = _claimed_by(wish)
    if wish.contact_via == "direct":
        action = "contact_shared"
        note = f"{by}接受了{claimer}的认领，已向认领人告知心愿人的姓名、手机号和服务地点"
        told = "心愿人已接受您的认领，请在心愿详情中查看联系方式"
    else:
        action = "accepted"
        note = f"{by}接受了{claimer}的认领；心愿人选择由社区联系，未告知个人联系方式"
        told = "心愿人已接受您的认领，社区工作人员会与您联系"
    event = await _record(
        wish,
        action=action,
        from_status="claimed",
        to_status="claimed",
        actor=actor,
        role=role,
        note=note,
    )
    await _notify(wish, event, user_id=wish.claimer_id, status="accepted", note=told)


async def release_wish(*, user: User, wish_id: int) -> WishDetailOut:
    """The claimer gives a claimed wish back to the board (status open again, nothing shared
    with the next claimer) and waits the cooldown before claiming again."""
    wish = await _load(wish_id)
    if wish.claimer_id != user.id:
        raise NotClaimer()
    async with in_transaction():
        await _free_claim_slot(user.id, released_at=clock.now())
        changed = await Wish.filter(id=wish.id, status="claimed", claimer_id=user.id).update(
            **_UNCLAIMED
        )
        if not changed:
            raise NotClaimed()
        event = await _record(
            wish,
            action="released",
            from_status="claimed",
            to_status="open",
            actor=user,
            role="claimer",
        )
        await _notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="released",
            note="认领人已放弃，心愿重新开放认领",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def fulfil_wish(
    *, user: User, wish_id: int, note: str, photo: tuple[str, bytes] | None = None
) -> WishDetailOut:
    """The claimer reports the wish done (with a note and an optional photo), once."""
    note = clean_text(
        note, field="note", label="完成情况", min_length=2, max_length=500, multiline=True
    )
    photo = _check_photo(photo)
    wish = await _load(wish_id)
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
        event = await _record(
            wish,
            action="fulfilled",
            from_status="claimed",
            to_status="fulfilled",
            actor=user,
            role="claimer",
            note=note,
        )
        await _notify(
            wish,
            event,
            user_id=wish.poster_id,
            status="fulfilled",
            note="认领人已完成，请确认并评价",
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def confirm_wish(
    *, user: User, wish_id: int, rating: int, thanks: str | None = None
) -> WishDetailOut:
    """The poster confirms a fulfilled wish: rated, thanked, and the claimer paid points once."""
    if not (isinstance(rating, int) and 1 <= rating <= 5):
        raise Invalid(fields={"rating": "请选择 1–5 星"})
    thanks = clean_text(thanks, field="thanks", label="感谢的话", max_length=200)
    wish = await _load(wish_id)
    if wish.poster_id != user.id:
        raise NotPoster()
    async with in_transaction():
        changed = await Wish.filter(id=wish.id, status="fulfilled", poster_id=user.id).update(
            status="closed", rating=rating, thanks=thanks, closed_at=clock.now()
        )
        if not changed:
            raise NotFulfilled()
        # Our UPDATE holds the row, and a fulfilled wish's claimer can no longer change.
        wish = await _load(wish.id)
        paid = await points_service.award_by_rule_in_tx(
            user_id=wish.claimer_id,
            event_type="wish_fulfilled",
            source_type=POINTS_SOURCE,
            source_id=str(wish.id),
            reason=f"完成微心愿：{wish.title}"[:255],
        )
        event = await _record(
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
        await _notify(
            wish,
            event,
            user_id=wish.claimer_id,
            status="closed",
            note=f"{message}（+{points} 积分）" if points else message,
        )
    return await get_wish(viewer=user, wish_id=wish.id)


async def remove_wish(*, actor: User, wish_id: int, reason: str) -> WishDetailOut:
    """Staff of the wish's community close an abusive wish in any status that is not final."""
    reason = clean_text(reason, field="reason", label="关闭原因", min_length=2, max_length=200)
    wish = await _load(wish_id)
    await accounts_service.require_staff_of(actor, wish.community_id)
    if wish.status not in REMOVABLE_STATUSES:
        raise Conflict("心愿已结束，无需关闭", code="already_final")
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
        event = await _record(
            wish,
            action="removed",
            from_status=wish.status,
            to_status="removed",
            actor=actor,
            role="staff",
            note=reason,
        )
        note = f"心愿已被社区工作人员关闭：{reason}"
        await _notify(wish, event, user_id=wish.poster_id, status="removed", note=note)
        if wish.claimer_id is not None:
            await _notify(wish, event, user_id=wish.claimer_id, status="removed", note=note)
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
                event = await _record(
                    wish,
                    action="auto_released",
                    from_status="claimed",
                    to_status="open",
                    actor=None,
                    role="system",
                )
                await _notify(
                    wish,
                    event,
                    user_id=wish.poster_id,
                    status="released",
                    note="认领人未在期限内完成，心愿已重新开放认领",
                )
                await _notify(
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
