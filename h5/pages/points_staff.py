"""积分 staff pages: 核销, rewards, redemptions, adjustments, the leaderboard, the Excel
export, and the street admins' earning rules. Forms become the same `*In` models the API
takes (`h5.forms.build`); every rule lives in backend.points."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from fastapi import File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import images
from backend.core.clock import clock, local_today, local_zone, to_local
from backend.core.config import get_settings
from backend.core.errors import DomainError, Invalid
from backend.core.ids import MAX_ID, optional_org_id
from backend.core.pagination import PageRequest
from backend.core.security import mask_name
from backend.core.xlsx import xlsx_response
from backend.orgs.models import Community
from backend.points import adjustments, reports, rewards, rules
from backend.points.models import Redemption
from backend.points.schemas import (
    AdjustmentIn,
    CancelIn,
    ResidentLookupIn,
    RewardIn,
    RewardPatch,
    RuleIn,
    VerifyIn,
)
from backend.points.views import EVENT_TYPES, is_on_sale
from h5.forms import build, collect, max_length, parse_date, parse_local_datetime
from h5.page import page_router, see_other
from h5.pages.points import render_page
from h5.render import Action, describe_error, render_message
from h5.scope import staff_scope
from h5.session import CurrentUser

router = page_router()

Cursor = Annotated[str | None, Query(max_length=64)]
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdText = Annotated[str, Query(max_length=20)]
IdField = Annotated[str, Form(max_length=20)]
Number = Annotated[str, Form(max_length=12)]

# The boxes' maxlength, read from the models the forms become.
LIMITS = {
    "title": max_length(RewardIn, "title"),
    "description": max_length(RewardIn, "description"),
    "image_url": max_length(RewardIn, "image_url"),
    "pickup_place": max_length(RewardIn, "pickup_place"),
    "who": max_length(ResidentLookupIn, "query"),
    "reason": max_length(AdjustmentIn, "reason"),
    "cancel_reason": max_length(CancelIn, "reason"),
    "note": max_length(RuleIn, "note"),
    "pickup_code": max_length(VerifyIn, "pickup_code"),
}


def _signed(value: str) -> int:
    """A whole number typed into a form (negative to take away), or Invalid."""
    text = value.strip()
    if not text.removeprefix("-").isdigit() or len(text) > 7:
        raise Invalid(fields={"delta": "请填写整数，减少请填负数"})
    return int(text)


async def _picture(upload: UploadFile | None) -> bytes | None:
    """The file chosen in a form's picture input (None when nothing was chosen)."""
    if upload is None or not upload.filename:
        return None
    # One byte over the limit is enough for the service to refuse it.
    return await upload.read(images.MAX_IMAGE_BYTES + 1)


async def _community(user: User, community_id: str) -> tuple[Community, list[Community]]:
    """The community a staff page is about (the one asked for, else the user's first;
    Forbidden for one they do not run) and the ones its switcher offers."""
    scope = await staff_scope(user)
    return scope.pick(optional_org_id(community_id), strict=True), scope.communities


async def _staff_page(
    request: Request, user: User, community_id: str, template: str, **context: Any
) -> HTMLResponse:
    community, communities = await _community(user, community_id)
    return await _render(request, user, community, communities, template, **context)


async def _render(
    request: Request,
    user: User,
    community: Community,
    communities: list[Community],
    template: str,
    **context: Any,
) -> HTMLResponse:
    return await render_page(
        request,
        user,
        template,
        tab="staff",
        community=community,
        communities=communities,
        limits=LIMITS,
        **context,
    )


@router.get("/h5/points/staff")
async def staff_home(
    request: Request, user: CurrentUser, community_id: IdText = ""
) -> HTMLResponse:
    today = local_today()
    return await _staff_page(
        request,
        user,
        community_id,
        "points/staff.html",
        export_start=today.replace(day=1).isoformat(),
        export_end=today.isoformat(),
    )


# --- 核销 and redemptions ---


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
    return await render_page(
        request,
        user,
        "points/verify.html",
        tab="staff",
        code=code,
        found=found,
        holder=mask_name(found.user.nickname) if found else "",
        expired=found is not None and found.expires_at <= clock.now(),
        error=error,
        limits=LIMITS,
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
    pickup_code: Annotated[str, Form(max_length=LIMITS["pickup_code"])] = "",
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
    request: Request,
    redemption_id: ObjectId,
    user: CurrentUser,
    reason: Annotated[str, Form(max_length=LIMITS["cancel_reason"])] = "",
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
    community, communities = await _community(user, community_id)
    page = await rewards.list_redemptions(
        actor=user,
        community_id=community.id,
        status=status or None,
        page=PageRequest(cursor=cursor),
    )
    return await _render(
        request,
        user,
        community,
        communities,
        "points/staff_redemptions.html",
        redemptions=page,
        status=status,
        mask_name=mask_name,
    )


# --- rewards ---


@router.get("/h5/points/staff/rewards")
async def staff_rewards(
    request: Request, user: CurrentUser, community_id: IdText = "", cursor: Cursor = None
) -> HTMLResponse:
    community, communities = await _community(user, community_id)
    page = await rewards.list_managed_rewards(
        actor=user, community_id=community.id, page=PageRequest(cursor=cursor)
    )
    return await _render(
        request,
        user,
        community,
        communities,
        "points/staff_rewards.html",
        rewards=page,
        on_sale=is_on_sale,
    )


REWARD_FIELDS = ("title", "cost", "stock", "per_user_limit", "pickup_days")
REWARD_TEXTS = ("title", "description", "image_url", "pickup_place")


def _reward_values(form: dict[str, str], errors: dict[str, str], *, creating: bool) -> dict:
    """The reward form as the model's values; complaints about numbers and times go to
    `errors`. A blank number is left out when creating (the model's default, or its
    "请填写"), and sent as empty when editing, which the service refuses for what must stay."""
    values: dict[str, Any] = {field: form.get(field, "") for field in REWARD_TEXTS}
    numbers = ("cost", "per_user_limit", "pickup_days") + (("stock",) if creating else ())
    for field in numbers:
        raw = (form.get(field) or "").strip()
        if raw.isdigit() and len(raw) <= 9:
            values[field] = int(raw)
        elif raw:
            errors[field] = "请填写整数"
        elif not creating:
            values[field] = None
    for field in ("on_sale_from", "on_sale_until"):
        values[field] = collect(errors, parse_local_datetime, form.get(field), field=field)
    return values


def _form_time(value: datetime | None) -> str:
    return to_local(value).strftime("%Y-%m-%dT%H:%M") if value else ""


@router.get("/h5/points/staff/rewards/new")
async def new_reward(
    request: Request, user: CurrentUser, community_id: IdText = ""
) -> HTMLResponse:
    return await _staff_page(
        request,
        user,
        community_id,
        "points/staff_reward_form.html",
        reward=None,
        values={"per_user_limit": 1, "pickup_days": get_settings().points_pickup_days},
    )


# Lengths and characters are the model's and the service's to judge, so their message
# names the field.
RewardText = Annotated[str, Form()]
PictureFile = Annotated[UploadFile | None, File()]


@router.post("/h5/points/staff/rewards")
async def create_reward(
    request: Request,
    user: CurrentUser,
    community_id: IdField = "",
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
    community, communities = await _community(user, community_id)
    try:
        errors: dict[str, str] = {}
        values = _reward_values(form, errors, creating=True)
        data = build(RewardIn, values | {"community_id": community.id}, errors)
        reward = await rewards.create_reward(actor=user, data=data, picture=await _picture(picture))
    except Invalid as exc:
        return await _render(
            request,
            user,
            community,
            communities,
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
    values = {f: getattr(reward, f) for f in (*REWARD_FIELDS, "description", "image_url")}
    values |= {
        "pickup_place": reward.pickup_place,
        "on_sale_from": _form_time(reward.on_sale_from),
        "on_sale_until": _form_time(reward.on_sale_until),
    }
    return await _staff_page(
        request,
        user,
        str(reward.community_id),
        "points/staff_reward_form.html",
        reward=reward,
        values=values,
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
    community, communities = await _community(user, str(reward.community_id))
    try:
        errors: dict[str, str] = {}
        values = _reward_values(form, errors, creating=False) | {"active": active == "1"}
        data = build(RewardPatch, values, errors)
        await rewards.update_reward(
            actor=user, reward_id=reward_id, data=data, picture=await _picture(picture)
        )
    except Invalid as exc:
        return await _render(
            request,
            user,
            community,
            communities,
            "points/staff_reward_form.html",
            reward=reward,
            values=form | {"stock": reward.stock},
            error=describe_error(exc),
            status_code=422,
        )
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=saved")


@router.post("/h5/points/staff/rewards/{reward_id}/stock")
async def change_stock(
    request: Request, reward_id: ObjectId, user: CurrentUser, delta: Number = ""
) -> Response:
    await rewards.change_stock(actor=user, reward_id=reward_id, delta=_signed(delta))
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=stock")


@router.post("/h5/points/staff/rewards/{reward_id}/picture/delete")
async def remove_picture(request: Request, reward_id: ObjectId, user: CurrentUser) -> Response:
    await rewards.remove_picture(actor=user, reward_id=reward_id)
    return see_other(f"/h5/points/staff/rewards/{reward_id}?done=picture_removed")


# --- adjustments ---


@router.get("/h5/points/staff/adjust")
async def adjust_page(
    request: Request, user: CurrentUser, community_id: IdText = "", cursor: Cursor = None
) -> HTMLResponse:
    community, communities = await _community(user, community_id)
    return await _adjust_page(request, user, community, communities, cursor=cursor)


async def _adjust_page(
    request: Request,
    user: User,
    community: Community,
    communities: list[Community],
    *,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = await adjustments.list_adjustments(
        actor=user, community_id=community.id, page=PageRequest(cursor=cursor)
    )
    return await _render(
        request,
        user,
        community,
        communities,
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
    community_id: IdField = "",
    who: Annotated[str, Form(max_length=LIMITS["who"])] = "",
    delta: Number = "",
    reason: Annotated[str, Form(max_length=LIMITS["reason"])] = "",
) -> Response:
    community, communities = await _community(user, community_id)
    values = {"who": who, "delta": delta, "reason": reason}
    try:
        amount = _signed(delta)
        target = await adjustments.find_resident(actor=user, query=who)
        data = build(AdjustmentIn, {"user_id": target.id, "delta": amount, "reason": reason})
        await adjustments.adjust_points(actor=user, data=data)
    except DomainError as exc:
        return await _adjust_page(
            request,
            user,
            community,
            communities,
            values=values,
            error=describe_error(exc),
            status_code=exc.status_code,
        )
    return see_other(f"/h5/points/staff/adjust?community_id={community.id}&done=adjusted")


# --- the leaderboard and the export ---


@router.get("/h5/points/staff/leaderboard")
async def staff_leaderboard(
    request: Request,
    user: CurrentUser,
    community_id: IdText = "",
    period: Literal["month", "year"] = "month",
) -> HTMLResponse:
    community, communities = await _community(user, community_id)
    board = await reports.get_leaderboard(viewer=user, community_id=community.id, period=period)
    return await _render(
        request, user, community, communities, "points/leaderboard.html", board=board, scope="staff"
    )


@router.get("/h5/points/staff/export")
async def export(
    request: Request,
    user: CurrentUser,
    community_id: IdText = "",
    start_date: Annotated[str, Query(max_length=10)] = "",
    end_date: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    community, _ = await _community(user, community_id)
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
    return await render_page(
        request,
        user,
        "points/staff_rules.html",
        tab="staff",
        rules=await rules.list_rules(),
        event_types=EVENT_TYPES,
        today=local_today().isoformat(),
        values=values or {},
        limits=LIMITS,
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


def _rule_values(form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The rule form as RuleIn's values; complaints about numbers and the day go to `errors`."""
    values: dict[str, Any] = {"event_type": form["event_type"], "note": form["note"]}
    points = _optional_number(form["points"], "points", errors)
    if points is not None:
        values["points"] = points  # blank: the model asks for it by name
    try:
        values["multiplier_percent"] = round(float(form["multiplier"] or "1") * 100)
    except ValueError:
        errors["multiplier"] = "请填写倍数，如 1 或 1.5"
    for field in ("daily_cap", "monthly_cap"):
        values[field] = _optional_number(form[field], field, errors)
    chosen = collect(errors, parse_date, form["effective_date"], field="effective_date")
    # Today means now; an earlier day goes to the service, which refuses it and says why.
    if chosen is not None and chosen != local_today():
        values["effective_from"] = datetime.combine(chosen, time(), tzinfo=local_zone())
    return values


@router.post("/h5/points/staff/rules")
async def add_rule(
    request: Request,
    user: CurrentUser,
    event_type: Annotated[str, Form(max_length=32)] = "",
    points: Number = "",
    multiplier: Number = "",
    daily_cap: Number = "",
    monthly_cap: Number = "",
    effective_date: Annotated[str, Form(max_length=10)] = "",
    note: Annotated[str, Form(max_length=LIMITS["note"])] = "",
) -> Response:
    form = {
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
        data = build(RuleIn, _rule_values(form, errors), errors)
        await rules.create_rule(actor=user, data=data)
    except DomainError as exc:
        if exc.status_code == 403:
            raise
        return await _rules_page(
            request, user, values=form, error=describe_error(exc), status_code=exc.status_code
        )
    return see_other("/h5/points/staff/rules?done=rule")


@router.post("/h5/points/staff/rules/{rule_id}/withdraw")
async def withdraw_rule(request: Request, rule_id: ObjectId, user: CurrentUser) -> Response:
    await rules.withdraw_rule(actor=user, rule_id=rule_id)
    return see_other("/h5/points/staff/rules?done=withdrawn")
