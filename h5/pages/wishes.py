"""微心愿 pages for residents and members: the wish wall, posting, claim → fulfil → confirm,
and the 双向认领 board (staff review, export and matching are wishes_staff). Every rule lives in
backend.wishes; these handlers only parse and render."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images
from backend.core.clock import local_text, local_today
from backend.core.errors import DomainError, Forbidden, Invalid, RateLimited
from backend.core.ids import optional_org_id
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.orgs import service as orgs_service
from backend.wishes import board, contacts, lists
from backend.wishes import service as wishes_service
from backend.wishes.exceptions import NotResident
from backend.wishes.models import BOARD_CATEGORIES, WISH_CATEGORIES
from backend.wishes.schemas import (
    BoardItemIn,
    ConfirmIn,
    FulfilIn,
    ProgressIn,
    RemoveIn,
    ReviewIn,
    WishIn,
)
from backend.wishes.views import (
    ACTION_LABELS,
    CLAIM_STATUS_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    WishDetail,
)
from h5.forms import build, collect, max_length, parse_date
from h5.page import page_router, see_other
from h5.render import describe_error, render
from h5.scope import staff_scope
from h5.session import CurrentUser, safe_next

router = page_router()

ALL = PageRequest(limit=MAX_LIMIT)
Text = Annotated[str, Form(max_length=2000)]

DONE_MESSAGES = {
    "submitted": "心愿已提交，社区工作人员审核后会公开",
    "approved": "已审核通过，心愿已公开",
    "rejected": "已退回，并告知了心愿人",
    "claimed": "认领成功！请先与社区联系人沟通，心愿人接受后您会看到其联系方式",
    "accepted": "已接受认领，并记入进展记录",
    "released": "已放弃认领，心愿重新开放",
    "fulfilled": "已提交完成情况，等待心愿人确认",
    "closed": "感谢确认！认领人将获得积分",
    "withdrawn": "心愿已撤回",
    "removed": "心愿已关闭",
    "published": "已发布",
    "board_claimed": "认领成功，等待发布方确认",
    "confirm": "已确认对接",
    "decline": "已婉拒",
    "cancel": "已取消认领",
    "progress": "进展已记录",
    "done": "已确认完成",
    "close": "已停止认领",
}
FLAG_LABELS = {"phone": "手机号", "landline": "电话号码", "id_number": "身份证号"}
# The models behind the pages' forms, whose limits the boxes' maxlength show.
FORMS = {
    "wish": WishIn,
    "board": BoardItemIn,
    "review": ReviewIn,
    "fulfil": FulfilIn,
    "confirm": ConfirmIn,
    "remove": RemoveIn,
    "progress": ProgressIn,
}
BOARD_STEPS = {
    "confirm": board.confirm_claim,
    "decline": board.decline_claim,
    "cancel": board.cancel_claim,
    "done": board.mark_done,
}


def limit(form: str, field: str) -> int | None:
    """The maxlength of a form box: the limit of `field` in the form's model."""
    return max_length(FORMS[form], field)


async def page(request: Request, user: User, template: str, **context: Any) -> HTMLResponse:
    """Render a wishes page with what every one of them needs (tabs, labels, time format)."""
    status_code = context.pop("status_code", 200)
    return render(
        request,
        template,
        status_code=status_code,
        user=user,
        is_staff=await accounts_service.is_staff_anywhere(user),
        is_admin=await accounts_service.is_street_admin(user),
        status_labels=STATUS_LABELS,
        action_labels=ACTION_LABELS,
        claim_labels=CLAIM_STATUS_LABELS,
        kind_labels=KIND_LABELS,
        flag_labels=FLAG_LABELS,
        local=local_text,
        limit=limit,
        **context,
    )


# --- the wish wall ---


@router.get("/h5/wishes")
async def wall(
    request: Request,
    user: CurrentUser,
    category: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    community_id: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    filters = {
        "category": category or None,
        "status": status or None,
        "community_id": optional_org_id(community_id),
    }
    wishes = await lists.list_wishes(page=PageRequest(cursor=cursor), **filters)
    return await page(
        request,
        user,
        "wishes/wall.html",
        tab="wall",
        wishes=wishes,
        filters=filters,
        categories=WISH_CATEGORIES,
        communities=(await orgs_service.list_communities(page=ALL)).items,
    )


@router.get("/h5/wishes/new")
async def new_wish(request: Request, user: CurrentUser) -> HTMLResponse:
    return await _wish_form(request, user)


async def _wish_form(
    request: Request,
    user: User,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    community = (
        await orgs_service.get_community(community_id=user.community_id)
        if user.community_id
        else None
    )
    return await page(
        request,
        user,
        "wishes/form.html",
        tab="wall",
        community=community,
        categories=WISH_CATEGORIES,
        values=values or {},
        today=local_today().isoformat(),
        error=error,
        status_code=status_code,
    )


@router.post("/h5/wishes")
async def post_wish(
    request: Request,
    user: CurrentUser,
    title: Text = "",
    description: Text = "",
    category: Annotated[str, Form(max_length=16)] = "",
    needed_by: Annotated[str, Form(max_length=10)] = "",
    address: Text = "",
    contact_via: Annotated[str, Form(max_length=16)] = "direct",
) -> Response:
    values = {
        "title": title,
        "description": description,
        "category": category,
        "needed_by": needed_by,
        "address": address,
        "contact_via": contact_via,
    }
    if user.community_id is None:
        # The service's refusal, before the model (which needs a community) names a field.
        raise NotResident()
    errors: dict[str, str] = {}
    try:
        data = build(
            WishIn,
            {
                **values,
                "community_id": user.community_id,
                "needed_by": collect(errors, parse_date, needed_by, field="needed_by"),
            },
            errors,
        )
        wish = await wishes_service.submit_wish(user=user, data=data)
    except (Invalid, RateLimited) as exc:
        return await _wish_form(
            request, user, values=values, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"/h5/wishes/{wish.id}?done=submitted")


@router.get("/h5/wishes/mine")
async def mine(request: Request, user: CurrentUser) -> HTMLResponse:
    return await page(
        request,
        user,
        "wishes/mine.html",
        tab="mine",
        posted=(await lists.list_my_wishes(user=user, page=ALL)).items,
        claimed=(await lists.list_my_claims(user=user, page=ALL)).items,
    )


# --- the two-way board ---


@router.get("/h5/wishes/board")
async def board_page(
    request: Request,
    user: CurrentUser,
    kind: Annotated[str, Query(max_length=16)] = "need",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    items = await board.list_items(page=PageRequest(cursor=cursor), kind=kind)
    return await page(
        request,
        user,
        "wishes/board.html",
        tab="board",
        kind=kind,
        items=items,
        may_publish_need=await accounts_service.is_staff_anywhere(user),
        may_publish_resource=user.unit_id is not None,
        claims=(await board.list_claims_for(actor=user, page=PageRequest())).items,
    )


async def _board_form(
    request: Request,
    user: User,
    *,
    kind: str,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return await page(
        request,
        user,
        "wishes/board_form.html",
        tab="board",
        kind=kind,
        categories=BOARD_CATEGORIES,
        communities=await _staff_communities(user),
        unit=await orgs_service.get_unit(unit_id=user.unit_id) if user.unit_id else None,
        values=values or {},
        error=error,
        status_code=status_code,
    )


async def _staff_communities(user: User) -> list:
    """The communities `user` may publish needs for or claim resources for (none if not staff)."""
    try:
        return (await staff_scope(user)).communities
    except Forbidden:
        return []


@router.get("/h5/wishes/board/new")
async def new_board_item(
    request: Request, user: CurrentUser, kind: Annotated[str, Query(max_length=16)] = "need"
) -> HTMLResponse:
    return await _board_form(request, user, kind=kind)


@router.post("/h5/wishes/board")
async def publish_board_item(
    request: Request,
    user: CurrentUser,
    kind: Annotated[str, Form(max_length=16)] = "",
    community_id: Annotated[str, Form(max_length=20)] = "",
    title: Text = "",
    description: Text = "",
    category: Annotated[str, Form(max_length=16)] = "",
    quantity: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    values = {
        "community_id": community_id,
        "title": title,
        "description": description,
        "category": category,
        "quantity": quantity,
    }
    errors: dict[str, str] = {}
    try:
        data = build(
            BoardItemIn,
            {
                "kind": kind,
                "community_id": (
                    collect(errors, optional_org_id, community_id, field="community_id")
                    if kind == "need"
                    else None
                ),
                "unit_id": user.unit_id if kind == "resource" else None,
                "title": title,
                "description": description,
                "category": category,
                "quantity": int(quantity) if quantity.strip().isdigit() else 0,
            },
            errors,
        )
        item = await board.publish_item(actor=user, data=data)
    except (Invalid, RateLimited) as exc:
        return await _board_form(
            request,
            user,
            kind=kind,
            values=values,
            error=describe_error(exc),
            status_code=exc.status_code,
        )
    return see_other(f"/h5/wishes/board/{item.id}?done=published")


async def _board_item_page(
    request: Request,
    user: User,
    item_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return await page(
        request,
        user,
        "wishes/board_item.html",
        tab="board",
        item=await board.get_item(viewer=user, item_id=item_id),
        communities=await _staff_communities(user),
        done=DONE_MESSAGES.get(done or ""),
        error=error,
        status_code=status_code,
    )


@router.get("/h5/wishes/board/{item_id}")
async def board_item(
    request: Request,
    user: CurrentUser,
    item_id: int,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    return await _board_item_page(request, user, item_id, done=done)


async def _on_board_item(
    request: Request, user: User, item_id: int, action: Awaitable[Any], done: str
) -> Response:
    try:
        await action
    except DomainError as exc:
        return await _board_item_page(
            request, user, item_id, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other(f"/h5/wishes/board/{item_id}?done={done}")


@router.post("/h5/wishes/board/{item_id}/claim")
async def claim_board_item(
    request: Request,
    user: CurrentUser,
    item_id: int,
    community_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    item = await board.get_item(viewer=user, item_id=item_id)
    target = (
        {"unit_id": user.unit_id}
        if item.kind == "need"
        else {"community_id": optional_org_id(community_id)}
    )
    return await _on_board_item(
        request,
        user,
        item_id,
        board.claim_item(actor=user, item_id=item_id, **target),
        "board_claimed",
    )


@router.post("/h5/wishes/board/{item_id}/close")
async def close_board_item(request: Request, user: CurrentUser, item_id: int) -> Response:
    return await _on_board_item(
        request, user, item_id, board.close_item(actor=user, item_id=item_id), "close"
    )


@router.post("/h5/wishes/board/claims/{claim_id}/{action}")
async def act_on_board_claim(
    request: Request,
    user: CurrentUser,
    claim_id: int,
    action: str,
    item_id: Annotated[int, Form()],
    note: Text = "",
) -> Response:
    if action == "progress":
        step = board.record_progress(actor=user, claim_id=claim_id, note=note)
    elif action in BOARD_STEPS:
        step = BOARD_STEPS[action](actor=user, claim_id=claim_id)
    else:
        raise Invalid("不支持的操作")
    return await _on_board_item(request, user, item_id, step, action)


# --- one wish ---


def highlighted(wish: WishDetail) -> dict[str, list[tuple[str, str | None]]]:
    """The wish's texts cut into pieces, the ones that look like personal data marked (staff)."""
    return {
        "title": contacts.highlight_segments(wish.title),
        "description": contacts.highlight_segments(wish.description),
        "address": contacts.highlight_segments(wish.contact.address if wish.contact else ""),
    }


async def _wish_page(
    request: Request,
    user: User,
    wish_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    wish = await contacts.get_wish(viewer=user, wish_id=wish_id)
    unit = await orgs_service.get_unit(unit_id=user.unit_id) if user.unit_id else None
    return await page(
        request,
        user,
        "wishes/detail.html",
        tab="wall",
        wish=wish,
        unit=unit,
        highlighted=highlighted(wish) if wish.flags else None,
        done=DONE_MESSAGES.get(done or ""),
        error=error,
        status_code=status_code,
    )


@router.get("/h5/wishes/{wish_id}")
async def wish_detail(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    return await _wish_page(request, user, wish_id, done=done)


@router.get("/h5/wishes/{wish_id}/photo")
async def wish_photo(user: CurrentUser, wish_id: int) -> Response:
    photo = await contacts.get_wish_photo(viewer=user, wish_id=wish_id)
    return Response(
        photo.content,
        media_type=photo.content_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def on_wish(
    request: Request, user: User, wish_id: int, action: Awaitable[Any], done: str, back: str = ""
) -> Response:
    """Run a transition; on a refusal show the wish again with the reason on top."""
    try:
        await action
    except DomainError as exc:
        return await _wish_page(
            request, user, wish_id, error=describe_error(exc), status_code=exc.status_code
        )
    target = safe_next(back) if back else f"/h5/wishes/{wish_id}"
    separator = "&" if "?" in target else "?"
    return see_other(f"{target}{separator}done={done}")


@router.post("/h5/wishes/{wish_id}/claim")
async def claim(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    for_unit: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    unit_id = user.unit_id if for_unit else None
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.claim_wish(user=user, wish_id=wish_id, unit_id=unit_id),
        "claimed",
    )


@router.post("/h5/wishes/{wish_id}/accept")
async def accept(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    claimer_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    # The claimer the page showed: if someone else holds the claim by now, nothing is shared.
    claimer = int(claimer_id) if claimer_id.isdigit() else 0
    return await on_wish(
        request,
        user,
        wish_id,
        contacts.accept_wish(actor=user, wish_id=wish_id, claimer_id=claimer),
        "accepted",
    )


@router.post("/h5/wishes/{wish_id}/release")
async def release(request: Request, user: CurrentUser, wish_id: int) -> Response:
    return await on_wish(
        request, user, wish_id, wishes_service.release_wish(user=user, wish_id=wish_id), "released"
    )


@router.post("/h5/wishes/{wish_id}/fulfil")
async def fulfil(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    note: Text = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    upload = None
    if photo is not None and photo.filename:
        # One byte over the limit is enough for the service to refuse it.
        content = await photo.read(images.MAX_IMAGE_BYTES + 1)
        upload = (photo.content_type or "", content)
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.fulfil_wish(user=user, wish_id=wish_id, note=note, photo=upload),
        "fulfilled",
    )


@router.post("/h5/wishes/{wish_id}/confirm")
async def confirm(
    request: Request,
    user: CurrentUser,
    wish_id: int,
    rating: Annotated[str, Form(max_length=2)] = "",
    thanks: Text = "",
) -> Response:
    stars = int(rating) if rating.isdigit() else 0
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.confirm_wish(user=user, wish_id=wish_id, rating=stars, thanks=thanks),
        "closed",
    )


@router.post("/h5/wishes/{wish_id}/withdraw")
async def withdraw(request: Request, user: CurrentUser, wish_id: int) -> Response:
    return await on_wish(
        request,
        user,
        wish_id,
        wishes_service.withdraw_wish(user=user, wish_id=wish_id),
        "withdrawn",
    )
