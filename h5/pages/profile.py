"""「我的」: nickname, phone (shown masked), community, office building and resident unit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.errors import Invalid
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.orgs import service as orgs_service
from h5.page import page_router, see_other
from h5.render import describe_error, render
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)


async def _profile_page(
    request: Request,
    user: User,
    *,
    saved: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "profile.html",
        status_code=status_code,
        me=await accounts_service.describe_user(user=user),
        communities=(await orgs_service.list_communities(page=_ALL)).items,
        buildings=(await orgs_service.list_buildings(page=_ALL)).items,
        units=(await orgs_service.list_units(page=_ALL)).items,
        saved=saved,
        error=error,
    )


@router.get("/h5/me")
async def profile(
    request: Request, user: CurrentUser, saved: Annotated[bool, Query()] = False
) -> HTMLResponse:
    return await _profile_page(request, user, saved=saved)


@router.post("/h5/me")
async def update_profile(
    request: Request,
    user: CurrentUser,
    # Lengths and characters are the service's to judge, so its message names the field.
    nickname: Annotated[str, Form()] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    community_id: Annotated[int | None, Form()] = None,
    building_id: Annotated[int | None, Form()] = None,
    unit_id: Annotated[int | None, Form()] = None,
) -> Response:
    # An empty phone box keeps the number on file: the page never shows it unmasked to refill.
    new_phone = {"phone": phone} if phone.strip() else {}
    try:
        await accounts_service.update_profile(
            user=user,
            nickname=nickname,
            community_id=community_id,
            building_id=building_id,
            unit_id=unit_id,
            **new_phone,
        )
    except Invalid as exc:
        return await _profile_page(request, user, error=describe_error(exc), status_code=422)
    return see_other("/h5/me?saved=1")
