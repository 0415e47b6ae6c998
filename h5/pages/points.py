"""积分 pages: my points, the reward shop, redeeming with confirmation, my pickup codes with
QR, the leaderboard, and the staff's tools (核销, rewards, redemptions, adjustments, rules,
the Excel export). Every rule lives in backend.points; these handlers parse and render."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images
from backend.core.checkin import qr_svg
from backend.core.clock import clock, local_text
from backend.core.config import get_settings
from backend.core.errors import DomainError, Invalid, NotFound
from backend.core.idempotency import idempotent
from backend.core.ids import MAX_ID, optional_org_id
from backend.core.pagination import MAX_LIMIT, PageRequest
from backend.core.security import mask_name, random_token
from backend.core.xlsx import xlsx_response
from backend.orgs import service as orgs_service
from backend.orgs.models import Community
from backend.points import reports, rewards
from backend.points import service as points_service
from backend.points.models import Redemption, Reward
from h5.forms import collect, parse_date, parse_local_datetime
from h5.page import page_router, see_other
from h5.render import Action, describe_error, render, render_message
from h5.session import CurrentUser

router = page_router()

_ALL = PageRequest(limit=MAX_LIMIT)
Cursor = Annotated[str | None, Query(max_length=64)]
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdText = Annotated[str, Query(max_length=20)]
Short = Annotated[str, Form(max_length=200)]
KIND_ICONS = {"earned": "+", "adjust_up": "+", "refund": "+"}
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


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def _day(value: datetime) -> str:
    day = points_service.last_valid_day(value)
    return f"{day.year}年{day.month}月{day.day}日"


def _signed(value: str) -> int:
    """A whole number typed into a form (negative to take away), or Invalid."""
    text = value.strip()
    if not text.removeprefix("-").isdigit() or len(text) > 7:
        raise Invalid(fields={"delta": "请填写整数，减少请填负数"})
    return int(text)


def _picture_src(reward: Reward) -> str | None:
    """The reward's picture if this site serves it: the pages' CSP loads no other images."""
    url = rewards.image_url(reward)
    return url if url.startswith("/") and not url.startswith("//") else None


async def _picture(upload: UploadFile | None) -> bytes | None:
    """The file chosen in a form's picture input (None when nothing was chosen)."""
    if upload is None or not upload.filename:
        return None
    # One byte over the limit is enough for the service to refuse it.
    return await upload.read(images.MAX_IMAGE_BYTES + 1)


async def _page(request: Request, user: User, template: str, **context: Any) -> HTMLResponse:
    """Render a points page with what every one of them needs."""
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
    statement = await points_service.get_statement(
        user_id=user.id, page=PageRequest(limit=20, cursor=cursor)
    )
    return await _page(request, user, "points/index.html", tab="points", statement=statement)


@router.get("/h5/points/rules")
async def earning_rules(request: Request, user: CurrentUser) -> HTMLResponse:
    return await _page(
        request, user, "points/rules.html", tab="points", rules=await points_service.list_rules()
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
    return await _page(
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
    balance = await points_service.get_balance(user_id=user.id)
    return await _page(
        request,
        user,
        template,
        tab="shop",
        reward=reward,
        community=community,
        balance=balance,
        on_sale=rewards.is_on_sale(reward),
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
    request_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def act() -> dict[str, int]:
        redemption = await rewards.redeem_reward(user=user, reward_id=reward_id)
        return {"id": redemption.id}

    response = await idempotent(
        key=request_key or None,
        user_id=user.id,
        endpoint=f"POST /h5/points/rewards/{reward_id}/redeem",
        payload={"reward_id": reward_id},
        status_code=201,
        action=act,
    )
    redemption_id = json.loads(response.body)["id"]
    return see_other(f"/h5/points/redemptions/{redemption_id}?new=1")


@router.get("/h5/points/redemptions")
async def my_redemptions(
    request: Request, user: CurrentUser, cursor: Cursor = None
) -> HTMLResponse:
    page = await rewards.list_my_redemptions(user=user, page=PageRequest(cursor=cursor))
    return await _page(request, user, "points/redemptions.html", tab="codes", redemptions=page)


@router.get("/h5/points/redemptions/{redemption_id}")
async def redemption_detail(
    request: Request,
    redemption_id: ObjectId,
    user: CurrentUser,
    new: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    redemption = await rewards.get_redemption(viewer=user, redemption_id=redemption_id)
    mine = redemption.user_id == user.id
    return await _page(
        request,
        user,
        "points/redemption.html",
        tab="codes",
        redemption=redemption,
        mine=mine,
        new=new,
        qr=qr_svg(rewards.pickup_url(redemption), scale=6) if mine else None,
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
    return await _page(
        request, user, "points/leaderboard.html", tab="board", board=board, scope=scope
    )


@router.post("/h5/points/preferences")
async def set_preferences(
    request: Request,
    user: CurrentUser,
    leaderboard_opt_in: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    opt_in = leaderboard_opt_in == "1"
    await points_service.set_leaderboard_opt_in(user_id=user.id, opt_in=opt_in)
    return see_other(f"/h5/points/leaderboard?done={'opt_in' if opt_in else 'opt_out'}")


# --- staff ---


async def _staff_community(user: User, community_id: str) -> Community:
    """The community a staff page is about: the one asked for, else the user's first."""
    chosen = optional_org_id(community_id)
    if chosen is None:
        allowed = await accounts_service.staff_community_ids(user)
        chosen = allowed[0] if allowed else user.community_id
        if chosen is None:
            first = (await orgs_service.list_communities(page=PageRequest(limit=1))).items
            chosen = first[0].id if first else None
    if chosen is None:
        raise NotFound("还没有社区")
    community = await orgs_service.get_community(community_id=chosen)
    await accounts_service.require_staff_of(user, community.id)
    return community


async def _staff_page(
    request: Request, user: User, community: Community, template: str, **context: Any
) -> HTMLResponse:
    allowed = await accounts_service.staff_community_ids(user)
    communities = (await orgs_service.list_communities(page=_ALL)).items
    if allowed is not None:
        communities = [c for c in communities if c.id in allowed]
    return await _page(
        request,
        user,
        template,
        tab="staff",
        community=community,
        communities=communities,
        **context,
    )


@router.get("/h5/points/staff")
async def staff_home(
    request: Request, user: CurrentUser, community_id: IdText = ""
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    today = clock.now().astimezone(_zone()).date()
    return await _staff_page(
        request,
        user,
        community,
        "points/staff.html",
        export_start=today.replace(day=1).isoformat(),
        export_end=today.isoformat(),
    )


@router.get("/h5/points/staff/verify")
async def verify_page(
    request: Request,
    user: CurrentUser,
    code: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    found, error, status_code = None, None, 200
    if code.strip():
        try:
            found = await rewards.find_by_code(actor=user, pickup_code=code)
        except DomainError as exc:
            error, status_code = describe_error(exc), exc.status_code
    return await _verify_page(
        request,
        user,
        found,
        code=rewards.normalise_code(code),
        error=error,
        status_code=status_code,
    )


async def _verify_page(
    request: Request,
    user: User,
    found: Redemption | None,
    *,
    code: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    # Staff pages never show a pickup code: `code` is only ever what the staff member typed
    # or scanned from the holder's phone, which is what lets them hand the reward over.
    return await _page(
        request,
        user,
        "points/verify.html",
        tab="staff",
        code=code,
        found=found,
        holder=mask_name(found.user.nickname) if found else "",
        expired=found is not None and found.expires_at <= clock.now(),
        error=error,
        status_code=status_code,
    )


@router.get("/h5/points/staff/redemptions/{redemption_id}")
async def staff_redemption(
    request: Request, redemption_id: ObjectId, user: CurrentUser
) -> HTMLResponse:
    found = await rewards.get_redemption_for_staff(actor=user, redemption_id=redemption_id)
    return await _verify_page(request, user, found, code="")


@router.post("/h5/points/staff/verify")
async def verify(
    request: Request,
    user: CurrentUser,
    pickup_code: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    redemption = await rewards.verify_redemption(actor=user, pickup_code=pickup_code)
    return render_message(
        request,
        title="核销成功",
        desc=f"「{redemption.reward.title}」已核销，请把礼品交给居民。",
        kind="success",
        actions=(
            Action("继续核销", "/h5/points/staff/verify"),
            Action("返回积分管理", "/h5/points/staff", primary=False),
        ),
    )


@router.post("/h5/points/staff/redemptions/{redemption_id}/cancel")
async def cancel(
    request: Request, redemption_id: ObjectId, user: CurrentUser, reason: Short = ""
) -> Response:
    redemption = await rewards.cancel_redemption(
        actor=user, redemption_id=redemption_id, reason=reason
    )
    return render_message(
        request,
        title="已取消兑换",
        desc=f"「{redemption.reward.title}」的 {redemption.cost} 积分和库存已退还。",
        kind="success",
        actions=(Action("返回兑换记录", "/h5/points/staff/redemptions"),),
    )


@router.get("/h5/points/staff/redemptions")
async def staff_redemptions(
    request: Request,
    user: CurrentUser,
    community_id: IdText = "",
    status: Annotated[str, Query(max_length=16)] = rewards.PENDING,
    cursor: Cursor = None,
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    page = await rewards.list_redemptions(
        actor=user,
        community_id=community.id,
        status=status or None,
        page=PageRequest(cursor=cursor),
    )
    return await _staff_page(
        request,
        user,
        community,
        "points/staff_redemptions.html",
        redemptions=page,
        status=status,
        mask_name=mask_name,
    )


@router.get("/h5/points/staff/rewards")
async def staff_rewards(
    request: Request, user: CurrentUser, community_id: IdText = "", cursor: Cursor = None
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    page = await rewards.list_managed_rewards(
        actor=user, community_id=community.id, page=PageRequest(cursor=cursor)
    )
    return await _staff_page(
        request,
        user,
        community,
        "points/staff_rewards.html",
        rewards=page,
        on_sale=rewards.is_on_sale,
    )


REWARD_FIELDS = ("title", "cost", "stock", "per_user_limit", "pickup_days")


def _reward_values(form: dict[str, str], *, creating: bool) -> dict[str, Any]:
    """The reward form as the service's values, or Invalid with a reason per field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "image_url": form.get("image_url", ""),
        "pickup_place": form.get("pickup_place", ""),
    }
    numbers = ("cost", "per_user_limit", "pickup_days") + (("stock",) if creating else ())
    for field in numbers:
        raw = (form.get(field) or "").strip()
        if not raw:
            values[field] = None
        elif raw.isdigit() and len(raw) <= 9:
            values[field] = int(raw)
        else:
            errors[field] = "请填写整数"
    for field in ("on_sale_from", "on_sale_until"):
        values[field] = collect(errors, parse_local_datetime, form.get(field), field=field)
    if errors:
        raise Invalid(fields=errors)
    return values


def _form_time(value: datetime | None) -> str:
    return value.astimezone(_zone()).strftime("%Y-%m-%dT%H:%M") if value else ""


@router.get("/h5/points/staff/rewards/new")
async def new_reward(
    request: Request, user: CurrentUser, community_id: IdText = ""
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    return await _staff_page(
        request,
        user,
        community,
        "points/staff_reward_form.html",
        reward=None,
        values={"per_user_limit": 1, "pickup_days": get_settings().points_pickup_days},
    )


# Lengths and characters are the service's to judge, so its message names the field.
RewardText = Annotated[str, Form()]
PictureFile = Annotated[UploadFile | None, File()]


@router.post("/h5/points/staff/rewards")
async def create_reward(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[str, Form(max_length=20)] = "",
    title: RewardText = "",
    description: RewardText = "",
    image_url: RewardText = "",
    cost: RewardText = "",
    stock: RewardText = "",
    per_user_limit: RewardText = "",
    on_sale_from: RewardText = "",
    on_sale_until: RewardText = "",
    pickup_place: RewardText = "",
    pickup_days: RewardText = "",
    picture: PictureFile = None,
) -> Response:
    form = {
        "title": title,
        "description": description,
        "image_url": image_url,
        "cost": cost,
        "stock": stock,
        "per_user_limit": per_user_limit,
        "on_sale_from": on_sale_from,
        "on_sale_until": on_sale_until,
        "pickup_place": pickup_place,
        "pickup_days": pickup_days,
    }
    community = await _staff_community(user, community_id)
    try:
        values = _reward_values(form, creating=True)
        reward = await rewards.create_reward(
            actor=user, community_id=community.id, picture=await _picture(picture), **values
        )
    except Invalid as exc:
        return await _staff_page(
            request,
            user,
            community,
            "points/staff_reward_form.html",
            reward=None,
            values=form,
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"/h5/points/staff/rewards/{reward.id}?done=created")


@router.get("/h5/points/staff/rewards/{reward_id}")
async def edit_reward(request: Request, reward_id: ObjectId, user: CurrentUser) -> HTMLResponse:
    reward = await rewards.get_reward(reward_id=reward_id)
    community = await _staff_community(user, str(reward.community_id))
    values = {f: getattr(reward, f) for f in (*REWARD_FIELDS, "description", "image_url")}
    values |= {
        "pickup_place": reward.pickup_place,
        "on_sale_from": _form_time(reward.on_sale_from),
        "on_sale_until": _form_time(reward.on_sale_until),
    }
    return await _staff_page(
        request, user, community, "points/staff_reward_form.html", reward=reward, values=values
    )


@router.post("/h5/points/staff/rewards/{reward_id}")
async def update_reward(
    request: Request,
    reward_id: ObjectId,
    user: CurrentUser,
    title: RewardText = "",
    description: RewardText = "",
    image_url: RewardText = "",
    cost: RewardText = "",
    per_user_limit: RewardText = "",
    on_sale_from: RewardText = "",
    on_sale_until: RewardText = "",
    pickup_place: RewardText = "",
    pickup_days: RewardText = "",
    active: Annotated[str, Form(max_length=5)] = "",
    picture: PictureFile = None,
) -> Response:
    form = {
        "title": title,
        "description": description,
        "image_url": image_url,
        "cost": cost,
        "per_user_limit": per_user_limit,
        "on_sale_from": on_sale_from,
        "on_sale_until": on_sale_until,
        "pickup_place": pickup_place,
        "pickup_days": pickup_days,
    }
    reward = await rewards.get_reward(reward_id=reward_id)
    community = await _staff_community(user, str(reward.community_id))
    try:
        values = _reward_values(form, creating=False) | {"active": active == "1"}
        await rewards.update_reward(
            actor=user, reward_id=reward_id, changes=values, picture=await _picture(picture)
        )
    except Invalid as exc:
        return await _staff_page(
            request,
            user,
            community,
            "points/staff_reward_form.html",
            reward=reward,
            values=form | {"stock": reward.stock},
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=saved")


@router.post("/h5/points/staff/rewards/{reward_id}/stock")
async def change_stock(
    request: Request,
    reward_id: ObjectId,
    user: CurrentUser,
    delta: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    await rewards.change_stock(actor=user, reward_id=reward_id, delta=_signed(delta))
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=stock")


@router.post("/h5/points/staff/rewards/{reward_id}/picture/delete")
async def remove_picture(request: Request, reward_id: ObjectId, user: CurrentUser) -> Response:
    await rewards.remove_picture(actor=user, reward_id=reward_id)
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=picture_removed")


@router.get("/h5/points/staff/adjust")
async def adjust_page(
    request: Request, user: CurrentUser, community_id: IdText = "", cursor: Cursor = None
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    return await _adjust_page(request, user, community, cursor=cursor)


async def _adjust_page(
    request: Request,
    user: User,
    community: Community,
    *,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = await points_service.list_adjustments(
        actor=user, community_id=community.id, page=PageRequest(cursor=cursor)
    )
    return await _staff_page(
        request,
        user,
        community,
        "points/staff_adjust.html",
        adjustments=page,
        values=values or {},
        error=error,
        status_code=status_code,
    )


@router.post("/h5/points/staff/adjust")
async def adjust(
    request: Request,
    user: CurrentUser,
    community_id: Annotated[str, Form(max_length=20)] = "",
    who: Annotated[str, Form(max_length=32)] = "",
    delta: Annotated[str, Form(max_length=12)] = "",
    reason: Short = "",
) -> Response:
    community = await _staff_community(user, community_id)
    values = {"who": who, "delta": delta, "reason": reason}
    try:
        amount = _signed(delta)
        target = await points_service.find_resident(actor=user, query=who)
        await points_service.adjust_points(
            actor=user, user_id=target.id, delta=amount, reason=reason
        )
    except DomainError as exc:
        return await _adjust_page(
            request,
            user,
            community,
            values=values,
            error=describe_error(exc),
            status_code=exc.status_code,
        )
    return see_other(f"/h5/points/staff/adjust?community_id={community.id}&done=adjusted")


@router.get("/h5/points/staff/leaderboard")
async def staff_leaderboard(
    request: Request,
    user: CurrentUser,
    community_id: IdText = "",
    period: Literal["month", "year"] = "month",
) -> HTMLResponse:
    community = await _staff_community(user, community_id)
    board = await reports.get_leaderboard(viewer=user, community_id=community.id, period=period)
    return await _staff_page(
        request, user, community, "points/leaderboard.html", board=board, scope="staff"
    )


@router.get("/h5/points/staff/export")
async def export(
    request: Request,
    user: CurrentUser,
    community_id: IdText = "",
    start_date: Annotated[str, Query(max_length=10)] = "",
    end_date: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    community = await _staff_community(user, community_id)
    start = parse_date(start_date, field="start_date", required=True)
    end = parse_date(end_date, field="end_date", required=True)
    filename, content = await reports.export_ledger(
        actor=user, community_id=community.id, start_date=start, end_date=end
    )
    return xlsx_response(filename, content)


# --- earning rules (street admins) ---


@router.get("/h5/points/staff/rules")
async def rules_page(request: Request, user: CurrentUser) -> HTMLResponse:
    await accounts_service.require_street_admin(user)
    return await _rules_page(request, user)


async def _rules_page(
    request: Request,
    user: User,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return await _page(
        request,
        user,
        "points/staff_rules.html",
        tab="staff",
        rules=await points_service.list_rules(),
        event_types=points_service.EVENT_TYPES,
        today=clock.now().astimezone(_zone()).date().isoformat(),
        values=values or {},
        error=error,
        status_code=status_code,
    )


def _optional_number(value: str, field: str, errors: dict[str, str]) -> int | None:
    text = value.strip()
    if not text:
        return None
    if text.isdigit() and len(text) <= 7:
        return int(text)
    errors[field] = "请填写整数，不限请留空"
    return None


@router.post("/h5/points/staff/rules")
async def add_rule(
    request: Request,
    user: CurrentUser,
    event_type: Annotated[str, Form(max_length=32)] = "",
    points: Annotated[str, Form(max_length=12)] = "",
    multiplier: Annotated[str, Form(max_length=12)] = "",
    daily_cap: Annotated[str, Form(max_length=12)] = "",
    monthly_cap: Annotated[str, Form(max_length=12)] = "",
    effective_date: Annotated[str, Form(max_length=10)] = "",
    note: Short = "",
) -> Response:
    values = {
        "event_type": event_type,
        "points": points,
        "multiplier": multiplier,
        "daily_cap": daily_cap,
        "monthly_cap": monthly_cap,
        "effective_date": effective_date,
        "note": note,
    }
    try:
        errors: dict[str, str] = {}
        per_unit = _optional_number(points, "points", errors)
        if per_unit is None and "points" not in errors:
            errors["points"] = "请填写积分"
        try:
            percent = round(float(multiplier or "1") * 100)
        except ValueError:
            errors["multiplier"], percent = "请填写倍数，如 1 或 1.5", 100
        caps = (
            _optional_number(daily_cap, "daily_cap", errors),
            _optional_number(monthly_cap, "monthly_cap", errors),
        )
        start = None
        chosen = collect(errors, parse_date, effective_date, field="effective_date")
        # Today means now; an earlier day goes to the service, which refuses it and says why.
        if chosen is not None and chosen != clock.now().astimezone(_zone()).date():
            start = datetime.combine(chosen, time(), tzinfo=_zone())
        if errors:
            raise Invalid(fields=errors)
        await points_service.create_rule(
            actor=user,
            event_type=event_type,
            points=per_unit or 0,
            multiplier_percent=percent,
            daily_cap=caps[0],
            monthly_cap=caps[1],
            effective_from=start,
            note=note,
        )
    except (Invalid, DomainError) as exc:
        if exc.status_code == 403:
            raise
        return await _rules_page(
            request, user, values=values, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other("/h5/points/staff/rules?done=rule")


@router.post("/h5/points/staff/rules/{rule_id}/withdraw")
async def withdraw_rule(request: Request, rule_id: ObjectId, user: CurrentUser) -> Response:
    await points_service.withdraw_rule(actor=user, rule_id=rule_id)
    return see_other("/h5/points/staff/rules?done=withdrawn")
