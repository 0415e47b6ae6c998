"""通知公告 pages: everyone reads published notices; staff compose one, preview exactly what
WeChat and the group robot will show, publish now or at a set time, cancel a scheduled one
and follow its delivery. Every rule lives in backend.notices."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.activities import catalogue as activity_catalogue
from backend.core.clock import local_text
from backend.core.errors import Invalid
from backend.core.ids import optional_id, optional_org_id
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.notices import service as notices_service
from backend.notices.deps import MessageRenderer
from backend.notices.schemas import NoticeIn
from backend.notices.views import describe_reason, notice_status
from backend.orgs import service as orgs_service
from h5.forms import build, collect, max_length, parse_local_datetime
from h5.page import page_router, see_other
from h5.render import describe_error, render
from h5.scope import staff_scope
from h5.session import CurrentUser, LoginRequired, page_user

router = page_router()

AUDIENCE_LABELS = {
    "all": "社区全体",
    "residents": "居民",
    "party_members": "在职党员",
    "workers": "楼宇白领",
    "unit_members": "驻区单位成员",
}
STATUS_LABELS = {"published": "已发布", "scheduled": "待发布", "cancelled": "已取消"}
# The fields of the `notice` WeChat template, as staff know them.
FIELD_LABELS = {
    "thing1": "通知标题",
    "thing2": "发布单位",
    "time3": "发布时间",
    "thing4": "内容摘要",
}
DONE_MESSAGES = {
    "published": "通知已发布，正在分批推送给收件人",
    "scheduled": "通知已保存，将在设定时间发布",
    "cancelled": "定时通知已取消",
}
_ALL = PageRequest(limit=MAX_LIMIT)


async def optional_page_user(request: Request) -> User | None:
    """The logged-in user, or None: published notices are public."""
    try:
        return await page_user(request)
    except LoginRequired:
        return None


OptionalPageUser = Annotated[User | None, Depends(optional_page_user)]


async def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    status_code = context.pop("status_code", 200)
    return render(
        request,
        template,
        status_code=status_code,
        audience_labels=AUDIENCE_LABELS,
        status_labels=STATUS_LABELS,
        status_of=notice_status,
        local=local_text,
        **context,
    )


# --- reading ---


@router.get("/h5/notices")
async def notice_list(
    request: Request,
    user: OptionalPageUser,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    # A resident sees their own community's notices and the street's; anyone else all of them.
    community_id = user.community_id if user else None
    notices = await notices_service.list_notices(
        page=PageRequest(cursor=cursor), community_id=community_id
    )
    is_staff = user is not None and await accounts_service.is_staff_anywhere(user)
    return await _page(request, "notices/list.html", notices=notices, is_staff=is_staff, user=user)


@router.get("/h5/notices/manage")
async def manage(
    request: Request,
    user: CurrentUser,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    notices = await notices_service.list_notices(
        page=PageRequest(cursor=cursor), status="all", viewer=user
    )
    return await _page(request, "notices/manage.html", notices=notices, is_staff=True)


@router.get("/h5/notices/new")
async def compose(request: Request, user: CurrentUser) -> HTMLResponse:
    return await _form(request, user, draft={})


@router.get("/h5/notices/{notice_id}")
async def detail(
    request: Request,
    notice_id: int,
    user: OptionalPageUser,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    notice = await notices_service.get_notice(notice_id=notice_id, viewer=user)
    manager = await notices_service.may_manage(user=user, notice=notice)
    delivery = (
        await notices_service.delivery_counts(actor=user, notice_id=notice.id)
        if manager and user is not None
        else None
    )
    return await _page(
        request,
        "notices/detail.html",
        notice=notice,
        manager=manager,
        delivery=delivery,
        describe_reason=describe_reason,
        done=DONE_MESSAGES.get(done),
    )


# --- composing (staff) ---


async def _form(
    request: Request,
    user: User,
    *,
    draft: dict[str, Any],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    scope = await staff_scope(user, refuse="只有社区工作人员可以发布通知")
    community_ids = scope.ids
    activities = await activity_catalogue.list_activities(page=_ALL, upcoming=True)
    return await _page(
        request,
        "notices/form.html",
        status_code=status_code,
        draft=draft,
        error=error,
        limit=partial(max_length, NoticeIn),
        street_wide=await accounts_service.is_street_admin(user),
        communities=scope.communities,
        buildings=(await orgs_service.list_buildings(page=_ALL)).items,
        units=(await orgs_service.list_units(page=_ALL)).items,
        activities=[
            v.activity for v in activities.items if v.activity.community_id in community_ids
        ],
    )


class DraftForm:
    """The compose form as the service takes it (and as the preview page carries it on)."""

    def __init__(
        self,
        # Text lengths and characters are the model's to judge (NoticeIn), so its message
        # names the field on the form.
        title: Annotated[str, Form()] = "",
        body: Annotated[str, Form()] = "",
        community_id: Annotated[str, Form(max_length=20)] = "",
        audience: Annotated[str, Form(max_length=20)] = "all",
        building_ids: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
        unit_ids: Annotated[list[str], Form()] = [],  # noqa: B006
        activity_id: Annotated[str, Form(max_length=20)] = "",
        link: Annotated[str, Form()] = "",
        publish_at: Annotated[str, Form(max_length=40)] = "",
    ) -> None:
        self.raw = {
            "title": title,
            "body": body,
            "community_id": community_id,
            "audience": audience,
            "building_ids": [b for b in building_ids if b],
            "unit_ids": [u for u in unit_ids if u],
            "activity_id": activity_id,
            "link": link,
            "publish_at": publish_at,
        }

    def data(self) -> NoticeIn:
        """The form as the notice model (Invalid naming every wrong field)."""
        raw, errors = self.raw, {}
        values = {
            "title": raw["title"],
            "body": raw["body"],
            "community_id": collect(
                errors, optional_org_id, raw["community_id"], field="community_id"
            ),
            "audience": raw["audience"],
            "building_ids": [
                collect(errors, optional_org_id, b, field="building_ids")
                for b in raw["building_ids"]
            ],
            "unit_ids": [
                collect(errors, optional_org_id, u, field="unit_ids") for u in raw["unit_ids"]
            ],
            "activity_id": collect(errors, optional_id, raw["activity_id"], field="activity_id"),
            "link": raw["link"],
            "publish_at": collect(
                errors, parse_local_datetime, raw["publish_at"], field="publish_at"
            ),
        }
        return build(NoticeIn, values, errors)


Draft = Annotated[DraftForm, Depends()]


@router.post("/h5/notices/preview")
async def preview(
    request: Request, user: CurrentUser, draft: Draft, render_message: MessageRenderer
) -> HTMLResponse:
    try:
        shown = await notices_service.preview_notice(
            actor=user, render=render_message, data=draft.data()
        )
    except Invalid as exc:
        return await _form(
            request, user, draft=draft.raw, error=describe_error(exc), status_code=422
        )
    return await _page(
        request, "notices/preview.html", draft=draft.raw, preview=shown, field_labels=FIELD_LABELS
    )


@router.post("/h5/notices")
async def publish(
    request: Request,
    user: CurrentUser,
    draft: Draft,
    back: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if back:
        return await _form(request, user, draft=draft.raw)
    try:
        notice = await notices_service.create_notice(actor=user, data=draft.data())
    except Invalid as exc:
        return await _form(
            request, user, draft=draft.raw, error=describe_error(exc), status_code=422
        )
    return see_other(f"/h5/notices/{notice.id}?done={notice.status}")


@router.post("/h5/notices/{notice_id}/cancel")
async def cancel(request: Request, notice_id: int, user: CurrentUser) -> Response:
    await notices_service.cancel_notice(actor=user, notice_id=notice_id)
    return see_other(f"/h5/notices/{notice_id}?done=cancelled")
