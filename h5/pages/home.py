"""The home page: who is logged in, their community, and the way into each capability."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.orgs import service as orgs_service
from h5.page import page_router
from h5.render import render
from h5.session import CurrentUser

router = page_router()


@dataclass(frozen=True)
class Entry:
    """A way in from the home page grid."""

    path: str
    title: str
    note: str
    glyph: str
    tone: str


CAPABILITIES = (
    Entry("/h5/party", "在职党员报到", "双报到 · 服务岗", "党", "red"),
    Entry("/h5/wishes", "微心愿", "认领邻里心愿", "愿", "orange"),
    Entry("/h5/activities", "活动报名", "午间一小时", "约", "green"),
    Entry("/h5/points", "积分兑换", "服务换好礼", "分", "yellow"),
    Entry("/h5/notices", "通知公告", "社区最新消息", "告", "blue"),
)
PROFILE_ENTRY = Entry("/h5/me", "我的", "社区与资料", "我", "indigo")


@router.get("/h5/")
async def home(request: Request, user: CurrentUser) -> HTMLResponse:
    me = await accounts_service.describe_user(user=user)
    community = (
        await orgs_service.get_community(community_id=me.community_id) if me.community_id else None
    )
    building = (
        await orgs_service.get_building(building_id=me.building_id) if me.building_id else None
    )
    return render(
        request,
        "home.html",
        me=me,
        community=community,
        building=building,
        entries=(*CAPABILITIES, PROFILE_ENTRY),
    )
