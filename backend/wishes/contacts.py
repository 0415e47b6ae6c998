"""Who sees what of a wish (PIPL), and the poster accepting a claimer.

The public sees reviewed wishes only, the poster's name masked and phone-like or ID-like
strings in the text masked, never a phone or an address. Claiming alone shares nothing
personal: the claimer sees the community's work contact and the poster's masked phone. The
poster's name, phone and address reach the claimer only when the poster (or staff for them)
accepts that claimer, never when the poster chose to be reached through the community; each
acceptance is a history row, and giving the claim back clears it, so the next claimer starts
masked again. Staff always see the contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import Invalid, NotFound
from backend.core.ids import may_exist
from backend.core.security import decrypt_field, mask_name, mask_phone
from backend.wishes.events import notify, record
from backend.wishes.exceptions import ClaimerChanged, NotClaimed, NotPosterOrStaff
from backend.wishes.models import PUBLIC_STATUSES, Wish, WishEvent, WishPhoto
from backend.wishes.views import (
    ACTOR_LABELS,
    OfficeContact,
    PersonalFlag,
    PosterContact,
    WishDetail,
    WishStep,
    WishSummary,
)

# Statuses staff may still close; the others are final.
REMOVABLE_STATUSES = ("pending_review", "open", "claimed", "fulfilled")
# Statuses in which the claimer works with the poster and so sees their contact.
CONTACT_STATUSES = ("claimed", "fulfilled")

# --- personal data in free text: caught at review, masked for the public ---

_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"(?![0-9A-Za-z])"
)
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")
_PATTERNS = (("id_number", _ID_NUMBER), ("phone", _MOBILE), ("landline", _LANDLINE))


def find_personal_data(text: str, *, field: str = "description") -> list[PersonalFlag]:
    """Phone-number-like and ID-number-like stretches of `text`, in order."""
    found: list[PersonalFlag] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < f.end and f.start < match.end() for f in found):
                continue
            found.append(
                PersonalFlag(
                    kind=kind,
                    field=field,
                    text=match.group(),
                    start=match.start(),
                    end=match.end(),
                )
            )
    return sorted(found, key=lambda f: f.start)


def _masked(flag: PersonalFlag) -> str:
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


def wishes() -> QuerySet[Wish]:
    return Wish.all().select_related("community", "poster", "claimer", "claimer_unit")


async def load(wish_id: int) -> Wish:
    wish = await wishes().filter(id=wish_id).first() if may_exist(wish_id) else None
    if wish is None:
        raise NotFound("心愿不存在或已删除")
    return wish


async def may_claim(user: User) -> bool:
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
        may_claim=wish.poster_id != user.id and await may_claim(user),
    )


async def visible(wish_id: int, user: User | None) -> tuple[Wish, Access]:
    wish = await load(wish_id)
    access = await _access(wish, user)
    if wish.status not in PUBLIC_STATUSES and not (access.poster or access.staff):
        # An unreviewed or rejected wish does not exist for anyone else.
        raise NotFound("心愿不存在或已删除")
    return wish, access


def claimed_by(wish: Wish) -> str | None:
    if wish.claimer_unit_id is not None:
        return wish.claimer_unit.name
    if wish.claimer_id is not None:
        return mask_name(wish.claimer.nickname)
    return None


def _summary(wish: Wish, *, redact: bool) -> dict:
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
        "claimed_by": claimed_by(wish),
        "claimer_unit_id": wish.claimer_unit_id,
        "rating": wish.rating,
        "created_at": wish.created_at,
        "claimed_at": wish.claimed_at,
        "fulfilled_at": wish.fulfilled_at,
        "closed_at": wish.closed_at,
    }


def summarize(wish: Wish, *, redact: bool = True) -> WishSummary:
    """The list view of a loaded wish (masked for the public unless `redact` is False)."""
    return WishSummary(**_summary(wish, redact=redact))


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


def sees_contact(wish: Wish, access: Access) -> bool:
    """Staff, or the claimer the poster accepted (when the poster did not choose the community)."""
    accepted = wish.accepted_at is not None and wish.contact_via == "direct"
    return access.staff or (accepted and _working_claimer(wish, access))


def _contact(wish: Wish, access: Access) -> PosterContact | None:
    if not sees_contact(wish, access):
        return None
    return PosterContact(
        name=wish.poster.nickname,
        phone=decrypt_field(wish.poster.phone_encrypted),
        address=wish.address,
    )


def _community_contact(wish: Wish, access: Access) -> OfficeContact | None:
    if not (access.staff or _working_claimer(wish, access)):
        return None
    community = wish.community
    if not (community.contact_name or community.contact_phone):
        return None
    return OfficeContact(
        community_name=community.name, name=community.contact_name, phone=community.contact_phone
    )


def _masked_poster_phone(wish: Wish, access: Access) -> str | None:
    if not _working_claimer(wish, access):
        return None
    return mask_phone(decrypt_field(wish.poster.phone_encrypted))


async def _history(wish: Wish) -> list[WishStep]:
    return [
        WishStep(
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            actor=ACTOR_LABELS.get(event.actor_role, event.actor_role),
            note=event.note,
            created_at=event.created_at,
        )
        for event in await WishEvent.filter(wish_id=wish.id).order_by("id")
    ]


def _flags(wish: Wish) -> list[PersonalFlag]:
    return [
        *find_personal_data(wish.title, field="title"),
        *find_personal_data(wish.description, field="description"),
        *find_personal_data(wish.address, field="address"),
    ]


async def describe(wish: Wish, access: Access, *, with_history: bool = True) -> WishDetail:
    """The detail view of a loaded wish for the viewer `access` describes."""
    party = access.poster or access.claimer or access.staff
    # A number the poster typed into the text is theirs too: masked until they accept.
    unmasked = access.poster or sees_contact(wish, access)
    return WishDetail(
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


# --- one wish as the viewer may see it ---


async def get_wish(*, viewer: User | None, wish_id: int) -> WishDetail:
    """A wish as `viewer` may see it; NotFound for unreviewed wishes of others."""
    wish, access = await visible(wish_id, viewer)
    return await describe(wish, access)


async def get_wish_photo(*, viewer: User, wish_id: int) -> WishPhoto:
    """The fulfilment photo, for the poster, the claimer and staff only."""
    wish, access = await visible(wish_id, viewer)
    photo = await WishPhoto.get_or_none(wish_id=wish.id)
    if not (access.poster or access.claimer or access.staff) or photo is None:
        raise NotFound("没有照片")
    return photo


# --- accepting the claimer ---


async def accept_wish(*, actor: User, wish_id: int, claimer_id: int) -> WishDetail:
    """The poster, or staff of the wish's community for them, accepts the current claimer
    `claimer_id`: the poster's contact is shared with that claimer (unless the poster chose
    to be reached through the community), recorded once in the history; accepting again is
    a no-op."""
    if not may_exist(claimer_id):
        raise Invalid(fields={"claimer_id": "应为认领人编号"})
    wish, access = await visible(wish_id, actor)
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
            wish = await load(wish.id)
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
    claimer = claimed_by(wish)
    if wish.contact_via == "direct":
        action = "contact_shared"
        note = f"{by}接受了{claimer}的认领，已向认领人告知心愿人的姓名、手机号和服务地点"
        told = "心愿人已接受您的认领，请在心愿详情中查看联系方式"
    else:
        action = "accepted"
        note = f"{by}接受了{claimer}的认领；心愿人选择由社区联系，未告知个人联系方式"
        told = "心愿人已接受您的认领，社区工作人员会与您联系"
    event = await record(
        wish,
        action=action,
        from_status="claimed",
        to_status="claimed",
        actor=actor,
        role=role,
        note=note,
    )
    await notify(wish, event, user_id=wish.claimer_id, status="accepted", note=told)
