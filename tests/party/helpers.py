"""Party test helpers: members made through the real report-in and review."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from backend.accounts.models import User
from backend.orgs.models import Community
from backend.party import service
from backend.party.models import PartyRegistration, ServicePost
from tests.factories import make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """An aware Shanghai time, e.g. local(2026, 3, 1, 23, 0)."""
    return datetime(*args, tzinfo=SHANGHAI)


def form(community: Community, **overrides) -> service.RegistrationForm:
    values = {
        "name": "李建国",
        "phone": "13912345678",
        "work_unit": "静安区税务局",
        "party_org": "静安区税务局机关党委",
        "community_id": community.id,
        "party_org_contact": "王书记",
        "party_org_phone": "021-62170000",
        "address": "12号楼",
        "skills": ["文明劝导", "法律咨询"],
        "available_times": ["周六"],
    }
    values.update(overrides)
    return service.RegistrationForm(**values)


async def make_member(
    community: Community,
    staff: User,
    *,
    user: User | None = None,
    **overrides,
) -> tuple[User, PartyRegistration]:
    """A user reported in to `community` and approved by `staff`."""
    user = user or await make_user(community=community)
    registration = await service.register(user=user, form=form(community, **overrides))
    registration = await service.review_registration(
        actor=staff, registration_id=registration.id, approve=True
    )
    return user, registration


async def make_post(
    community: Community, staff: User, *, capacity: int = 2, term: int = 2026, **overrides
) -> ServicePost:
    values = {
        "community_id": community.id,
        "title": "绿化养护岗",
        "term": term,
        "capacity": capacity,
        "skills": ["环境绿化", "文明劝导"],
    }
    values.update(overrides)
    return await service.create_post(actor=staff, form=service.PostForm(**values))
