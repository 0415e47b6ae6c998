"""微心愿 staff pages: the review queue with the unit credits, review and removal of a wish,
the Excel export and the street admins' matching of the 双向认领 board. The pages residents
see, and the helpers these share with them, are h5.pages.wishes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.core.errors import Invalid
from backend.core.ids import optional_org_id
from backend.core.xlsx import xlsx_response
from backend.wishes import board, export, lists
from backend.wishes import service as wishes_service
from h5.page import page_router
from h5.pages.wishes import ALL, DONE_MESSAGES, Text, highlighted, on_wish, page
from h5.session import CurrentUser

router = page_router()


@router.get("/h5/wishes/review")
async def review_queue(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[str, Query(max_length=20)] = "",
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    community = optional_org_id(community_id)
    queue = await lists.list_staff_wishes(
        actor=user, page=ALL, community_id=community, status="pending_review"
    )
    return await page(
        request,
        user,
        "wishes/review.html",
        tab="review",
        queue=[(w, highlighted(w)) for w in queue.items],
        credits=await lists.unit_credits(actor=user, community_id=community),
        community_id=community,
        done=DONE_MESSAGES.get(done or ""),
    )


@router.get("/h5/wishes/export.xlsx")
async def export_xlsx(
    user: CurrentUser, community_id: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    content = await export.export_wishes_xlsx(
        actor=user, community_id=optional_org_id(community_id)
    )
    return xlsx_response("wishes.xlsx", content)


@router.get("/h5/wishes/board/matching")
async def matching_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return await page(
        request, user, "wishes/matching.html", tab="board", result=await board.matching(actor=user)
    )


@router.post("/h5/wishes/{wish_id}/review")
async def review(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    decision: Annotated[str, Form(max_length=8)] = "",
    reason: Text = "",
    back: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    if decision not in ("approve", "reject"):
        raise Invalid("请选择通过或不通过")
    approve = decision == "approve"
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.review_wish(actor=user, wish_id=wish_id, approve=approve, reason=reason),
        "approved" if approve else "rejected",
        back,
    )


@router.post("/h5/wishes/{wish_id}/remove")
async def remove(request: Request, user: CurrentUser, wish_id: int, reason: Text = "") -> Response:
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.remove_wish(actor=user, wish_id=wish_id, reason=reason),
        "removed",
    )
