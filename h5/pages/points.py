"""积分 pages for residents: my points, the reward shop, redeeming with confirmation, my
pickup codes with QR, and the leaderboard. The staff's tools are in h5.pages.points_staff.
Every rule lives in backend.points; these handlers parse and render."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core.checkin import qr_svg
from backend.core.clock import local_text
from backend.core.errors import Invalid
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID, optional_org_id
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.core.security import random_token
from backend.orgs import service as orgs_service
from backend.points import ledger, reports, rewards, rules
from backend.points.models import Reward
from backend.points.views import image_url, is_on_sale, pickup_url
from h5.page import page_router, see_other
from h5.render import render
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)
Cursor = Annotated[str | None, Query(max_length=64)]
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdText = Annotated[str, Query(max_length=20)]
DONE = {
    "saved": "已保存",
    "created": "礼品已上架",
    "stock": "库存已更新",
    "picture_removed": "图片已删除",
    "adjusted": "积分已调整",
    "rule": "规则已添加",
    "withdrawn": "规则已撤回",
    "opt_in": "已在排行榜上公开昵称",
    "opt_out": "已改为匿名显示",
}


def _day(value: datetime) -> str:
    day = ledger.last_valid_day(value)
    return f"{day.year}年{day.month}月{day.day}日"


def _picture_src(reward: Reward) -> str | None:
    """The reward's picture if this site serves it: the pages' CSP loads no other images."""
    url = image_url(reward)
    return url if url.startswith("/") and not url.startswith("//") else None


async def render_page(request: Request, user: User, template: str, **context: Any) -> HTMLResponse:
    """Render a points page with what every one of them needs (the staff's pages too)."""
    status_code = context.pop("status_code", 200)
    done = request.query_params.get("done")
    return render(
        request,
        template,
        status_code=status_code,
        user=user,
        is_staff=await accounts_service.is_staff_anywhere(user),
        is_admin=await accounts_service.is_street_admin(user),
        status_names=rewards.STATUS_NAMES,
        local=local_text,
        day=_day,
        picture_src=_picture_src,
        done=DONE.get(done or ""),
        **context,
    )


# --- my points ---


@router.get("/h5/points")
async def my_points(request: Request, user: CurrentUser, cursor: Cursor = None) -> HTMLResponse:
    statement = await ledger.get_statement(
        user_id=user.id, page=PageRequest(limit=20, cursor=cursor)
    )
    return await render_page(request, user, "points/index.html", tab="points", statement=statement)


@router.get("/h5/points/rules")
async def earning_rules(request: Request, user: CurrentUser) -> HTMLResponse:
    return await render_page(
        request, user, "points/rules.html", tab="points", rules=await rules.list_rules()
    )


# --- the shop ---


@router.get("/h5/points/rewards")
async def shop(
    request: Request, user: CurrentUser, community_id: IdText = "", cursor: Cursor = None
) -> HTMLResponse:
    chosen = optional_org_id(community_id) or user.community_id
    page = await rewards.list_rewards(
        page=PageRequest(cursor=cursor), community_id=chosen, on_sale=True
    )
    communities = (await orgs_service.list_communities(page=_ALL)).items
    return await render_page(
        request,
        user,
        "points/shop.html",
        tab="shop",
        rewards=page,
        chosen=chosen,
        communities=communities,
        community_names={c.id: c.name for c in communities},
    )


async def _reward_page(
    request: Request, user: User, reward_id: ObjectId, template: str, **context: Any
) -> HTMLResponse:
    reward = await rewards.get_reward(reward_id=reward_id)
    community = await orgs_service.get_community(community_id=reward.community_id)
    balance = await ledger.get_balance(user_id=user.id)
    return await render_page(
        request,
        user,
        template,
        tab="shop",
        reward=reward,
        community=community,
        balance=balance,
        on_sale=is_on_sale(reward),
        **context,
    )


@router.get("/h5/points/rewards/{reward_id}")
async def reward_detail(request: Request, reward_id: ObjectId, user: CurrentUser) -> HTMLResponse:
    return await _reward_page(request, user, reward_id, "points/reward.html")


@router.get("/h5/points/rewards/{reward_id}/redeem")
async def confirm_redeem(request: Request, reward_id: ObjectId, user: CurrentUser) -> HTMLResponse:
    # A fresh key per confirmation page: a double tap or a resent form redeems once.
    return await _reward_page(
        request, user, reward_id, "points/confirm.html", request_key=random_token(16)
    )


@router.post("/h5/points/rewards/{reward_id}/redeem")
async def redeem(
    request: Request,
    reward_id: ObjectId,
    user: CurrentUser,
    once: Idempotent,
    request_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def act() -> dict[str, int]:
        redemption = await rewards.redeem_reward(user=user, reward_id=reward_id)
        return {"id": redemption.id}

    # The confirmation page's key, not a header: a double tap or a resent form redeems once.
    response = await once.keyed(request_key or None).run(
        user_id=user.id, payload={"reward_id": reward_id}, status_code=201, action=act
    )
    redemption_id = json.loads(response.body)["id"]
    return see_other(f"/h5/points/redemptions/{redemption_id}?new=1")


@router.get("/h5/points/redemptions")
async def my_redemptions(
    request: Request, user: CurrentUser, cursor: Cursor = None
) -> HTMLResponse:
    page = await rewards.list_my_redemptions(user=user, page=PageRequest(cursor=cursor))
    return await render_page(
        request, user, "points/redemptions.html", tab="codes", redemptions=page
    )


@router.get("/h5/points/redemptions/{redemption_id}")
async def redemption_detail(
    request: Request,
    redemption_id: ObjectId,
    user: CurrentUser,
    new: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    redemption = await rewards.get_redemption(viewer=user, redemption_id=redemption_id)
    mine = redemption.user_id == user.id
    return await render_page(
        request,
        user,
        "points/redemption.html",
        tab="codes",
        redemption=redemption,
        mine=mine,
        new=new,
        qr=qr_svg(pickup_url(redemption), scale=6) if mine else None,
    )


# --- leaderboard ---


@router.get("/h5/points/leaderboard")
async def leaderboard(
    request: Request,
    user: CurrentUser,
    scope: Literal["community", "unit"] = "community",
    period: Literal["month", "year"] = "month",
    community_id: IdText = "",
) -> HTMLResponse:
    chosen = optional_org_id(community_id)
    if scope == "unit" and user.unit_id is None:
        raise Invalid("您还没有填写所在的驻区单位", fields={"unit_id": "请先在「我的」中选择"})
    board = await reports.get_leaderboard(
        viewer=user,
        community_id=chosen if scope == "community" else None,
        unit_id=user.unit_id if scope == "unit" else None,
        period=period,
    )
    return await render_page(
        request, user, "points/leaderboard.html", tab="board", board=board, scope=scope
    )


@router.post("/h5/points/preferences")
async def set_preferences(
    request: Request,
    user: CurrentUser,
    leaderboard_opt_in: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    opt_in = leaderboard_opt_in == "1"
    await ledger.set_leaderboard_opt_in(user_id=user.id, opt_in=opt_in)
    return see_other(f"/h5/points/leaderboard?done={'opt_in' if opt_in else 'opt_out'}")
