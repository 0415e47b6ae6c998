"""Party factories: report-in forms, members made through the real report-in and review,
posts set up as staff set them up. Bodies are built as the H5 forms build them
(`h5.forms.build`), so a wrong field is the same `Invalid` a page shows."""

from __future__ import annotations

from typing import Any

from backend.accounts.models import User
from backend.orgs.models import Community
from backend.party import posts, registrations
from backend.party.models import PartyRegistration, ServicePost
from backend.party.schemas import PostIn, RegistrationIn, ReviewIn
from h5.forms import build
from tests.factories import make_user


def registration_in(community: Community, **overrides: Any) -> RegistrationIn:
    """A complete report-in form for `community`, with `overrides`."""
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
    return build(RegistrationIn, values)


async def approve(staff: User, registration: PartyRegistration) -> PartyRegistration:
    return await registrations.review_registration(
        actor=staff, registration_id=registration.id, data=ReviewIn(approve=True)
    )


async def make_member(
    community: Community,
    staff: User,
    *,
    user: User | None = None,
    **overrides: Any,
) -> tuple[User, PartyRegistration]:
    """A user reported in to `community` and approved by `staff`."""
    user = user or await make_user(community=community)
    registration = await registrations.register(
        user=user, data=registration_in(community, **overrides)
    )
    return user, await approve(staff, registration)


def post_in(community: Community, **overrides: Any) -> PostIn:
    """A post of `community` (this term unless `term` is given), with `overrides`."""
    values = {
        "community_id": community.id,
        "title": "绿化养护岗",
        "term": 2026,
        "capacity": 2,
        "skills": ["环境绿化", "文明劝导"],
    }
    values.update(overrides)
    return build(PostIn, values)


async def make_post(
    community: Community, staff: User, *, capacity: int = 2, term: int = 2026, **overrides: Any
) -> ServicePost:
    return await posts.create_post(
        actor=staff, data=post_in(community, capacity=capacity, term=term, **overrides)
    )
