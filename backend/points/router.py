"""Points API: balances and ledgers, earning rules, adjustments, leaderboards, the export,
rewards and redemptions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from fastapi.responses import JSONResponse

from backend.accounts.deps import CurrentUser, StaffUser, StreetAdmin
from backend.core import images, xlsx
from backend.core import unguarded as unguarded_switch
from backend.core.errors import error_schema, responses
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import PageOut, PageParams
from backend.core.text import BoundedDate
from backend.points import adjustments, ledger, reports, rewards, rules, unguarded
from backend.points.schemas import (
    AdjustmentIn,
    CancelIn,
    LeaderboardOut,
    LedgerEntryOut,
    PointsOut,
    PreferencesIn,
    PreferencesOut,
    RedemptionOut,
    ResidentLookupIn,
    ResidentOut,
    RewardIn,
    RewardOut,
    RewardPatch,
    RuleIn,
    RuleOut,
    RulesOut,
    StaffRedemptionOut,
    StockChangeIn,
    VerifyIn,
)
from backend.points.views import picture_version

router = APIRouter(tags=["points"])

RewardId = Annotated[int, Path(ge=1, le=MAX_ID)]
RedemptionId = Annotated[int, Path(ge=1, le=MAX_ID)]
CommunityQuery = Annotated[int | None, Query(ge=1, le=MAX_ORG_ID, description="社区")]
# A versioned picture address never changes what it serves (a new upload gets a new
# address); any other request for it may be a little stale.
PICTURE_CACHE_VERSIONED = "public, max-age=31536000, immutable"
PICTURE_CACHE_LATEST = "public, max-age=300"


# --- the caller's points ---


@router.get(
    "/me/points",
    response_model=PointsOut,
    summary="我的积分：余额、将要过期的积分与明细（最新的在前）",
    responses=responses(401, 422, 429),
)
async def get_my_points(user: CurrentUser, page: PageParams) -> PointsOut:
    return PointsOut.of(await ledger.get_statement(user_id=user.id, page=page))


@router.get(
    "/me/points/preferences",
    response_model=PreferencesOut,
    summary="我的积分设置（是否在排行榜上显示昵称）",
    responses=responses(401, 422, 429),
)
async def get_my_preferences(user: CurrentUser) -> PreferencesOut:
    return PreferencesOut.model_validate(await ledger.get_preferences(user_id=user.id))


@router.put(
    "/me/points/preferences",
    response_model=PreferencesOut,
    summary="修改积分设置：同意后在排行榜上显示昵称，否则显示为匿名",
    responses=responses(401, 422, 429),
)
async def put_my_preferences(body: PreferencesIn, user: CurrentUser) -> PreferencesOut:
    preference = await ledger.set_leaderboard_opt_in(
        user_id=user.id, opt_in=body.leaderboard_opt_in
    )
    return PreferencesOut.model_validate(preference)


# --- adjustments ---


@router.post(
    "/points/adjustments",
    status_code=201,
    response_model=LedgerEntryOut,
    summary="手工调整积分（该用户所在社区的工作人员或街道管理员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def create_adjustment(body: AdjustmentIn, actor: StaffUser, once: Idempotent) -> JSONResponse:
    async def adjust() -> LedgerEntryOut:
        return LedgerEntryOut.model_validate(
            await adjustments.adjust_points(actor=actor, data=body)
        )

    return await once.run(
        user_id=actor.id, payload=body.model_dump(), status_code=201, action=adjust
    )


@router.post(
    "/points/residents/lookup",
    response_model=ResidentOut,
    summary="按手机号或居民编号查找居民（工作人员调整积分前核对）",
    description="一个手机号登记了多位本社区居民时不替您挑选，答 409 phone_ambiguous 并列出"
    "打码的候选人与居民编号，请改用居民编号查找。",
    responses={
        **responses(401, 403, 404, 422, 429),
        409: error_schema("phone_ambiguous"),
    },
)
async def lookup_resident(body: ResidentLookupIn, actor: StaffUser) -> ResidentOut:
    return ResidentOut.of(await adjustments.find_resident(actor=actor, query=body.query))


@router.get(
    "/points/adjustments",
    response_model=PageOut[LedgerEntryOut],
    summary="手工调整记录（审计）：某社区的，或街道管理员看全部",
    responses=responses(401, 403, 422, 429),
)
async def list_adjustments(
    actor: StaffUser, page: PageParams, community_id: CommunityQuery = None
) -> PageOut[LedgerEntryOut]:
    result = await adjustments.list_adjustments(actor=actor, community_id=community_id, page=page)
    return LedgerEntryOut.page(result)


# --- earning rules ---


@router.get(
    "/points/rules",
    response_model=RulesOut,
    summary="积分规则：每个事项现行的规则、已排定的新版本与历史版本",
    responses=responses(422, 429),
)
async def list_rules() -> RulesOut:
    return RulesOut.of(await rules.list_rules())


@router.post(
    "/points/rules",
    status_code=201,
    response_model=RuleOut,
    summary="新增规则版本（街道管理员）：从生效时间起适用，已发放的积分不变",
    responses=responses(401, 403, 409, 422, 429),
)
async def create_rule(body: RuleIn, actor: StreetAdmin) -> RuleOut:
    return RuleOut.of(await rules.create_rule(actor=actor, data=body))


@router.delete(
    "/points/rules/{rule_id}",
    status_code=204,
    summary="撤回尚未生效的规则版本（街道管理员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def withdraw_rule(
    rule_id: Annotated[int, Path(ge=1, le=MAX_ID)], actor: StreetAdmin
) -> Response:
    await rules.withdraw_rule(actor=actor, rule_id=rule_id)
    return Response(status_code=204)


# --- leaderboards and the export ---


@router.get(
    "/points/leaderboard",
    response_model=LeaderboardOut,
    summary="积分排行榜（月度/年度，按社区或驻区单位）；未同意公开的居民显示为匿名",
    responses=responses(401, 404, 422, 429),
)
async def get_leaderboard(
    user: CurrentUser,
    community_id: CommunityQuery = None,
    unit_id: Annotated[int | None, Query(ge=1, le=MAX_ORG_ID, description="驻区单位")] = None,
    period: Literal["month", "year"] = "month",
    on_date: Annotated[
        BoundedDate | None, Query(alias="date", description="所在月份或年份的某一天")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LeaderboardOut:
    board = await reports.get_leaderboard(
        viewer=user,
        community_id=community_id,
        unit_id=unit_id,
        period=period,
        on_date=on_date,
        limit=limit,
    )
    return LeaderboardOut.of(board)


@router.get(
    "/points/export",
    summary="导出某社区一段时间内积分发放与使用明细（Excel，工作人员）",
    response_class=Response,
    responses={
        200: {"content": {xlsx.MEDIA_TYPE: {}}, "description": "Excel 文件"},
        **responses(401, 403, 404, 422, 429),
    },
)
async def export_points(
    actor: StaffUser,
    community_id: Annotated[int, Query(ge=1, le=MAX_ORG_ID)],
    start_date: BoundedDate,
    end_date: BoundedDate,
) -> Response:
    filename, content = await reports.export_ledger(
        actor=actor, community_id=community_id, start_date=start_date, end_date=end_date
    )
    return xlsx.xlsx_response(filename, content)


# --- rewards ---


@router.post(
    "/rewards",
    status_code=201,
    response_model=RewardOut,
    summary="上架礼品（该社区工作人员）",
    responses=responses(401, 403, 422, 429),
)
async def create_reward(body: RewardIn, actor: StaffUser) -> RewardOut:
    return RewardOut.of(await rewards.create_reward(actor=actor, data=body))


@router.get(
    "/rewards",
    response_model=PageOut[RewardOut],
    summary="礼品列表（无需登录）",
    responses=responses(422, 429),
)
async def list_rewards(
    page: PageParams,
    community_id: CommunityQuery = None,
    on_sale: Annotated[bool, Query(description="只看现在能兑换的")] = False,
) -> PageOut[RewardOut]:
    result = await rewards.list_rewards(page=page, community_id=community_id, on_sale=on_sale)
    return RewardOut.page(result)


@router.get(
    "/rewards/{reward_id}",
    response_model=RewardOut,
    summary="礼品详情（无需登录）",
    responses=responses(404, 422, 429),
)
async def get_reward(reward_id: RewardId) -> RewardOut:
    return RewardOut.of(await rewards.get_reward(reward_id=reward_id))


@router.patch(
    "/rewards/{reward_id}",
    response_model=RewardOut,
    summary="修改礼品信息或下架（该社区工作人员）；已兑换的按原积分",
    responses=responses(401, 403, 404, 422, 429),
)
async def update_reward(reward_id: RewardId, body: RewardPatch, actor: StaffUser) -> RewardOut:
    return RewardOut.of(await rewards.update_reward(actor=actor, reward_id=reward_id, data=body))


@router.put(
    "/rewards/{reward_id}/picture",
    response_model=RewardOut,
    summary="上传礼品图片（该社区工作人员；multipart 字段 picture），再次上传即替换",
    responses=responses(401, 403, 404, 422, 429),
)
async def put_reward_picture(
    reward_id: RewardId,
    actor: StaffUser,
    picture: Annotated[UploadFile, File(description="JPG、PNG 或 WebP，不超过 2 MB")],
) -> RewardOut:
    # One byte over the limit is enough for the service to refuse it.
    content = await picture.read(images.MAX_IMAGE_BYTES + 1)
    return RewardOut.of(
        await rewards.set_picture(actor=actor, reward_id=reward_id, content=content)
    )


@router.delete(
    "/rewards/{reward_id}/picture",
    response_model=RewardOut,
    summary="删除上传的礼品图片（该社区工作人员）；没有图片时不变",
    responses=responses(401, 403, 404, 422, 429),
)
async def delete_reward_picture(reward_id: RewardId, actor: StaffUser) -> RewardOut:
    return RewardOut.of(await rewards.remove_picture(actor=actor, reward_id=reward_id))


@router.get(
    "/rewards/{reward_id}/picture",
    summary="礼品图片（无需登录）；礼品的 image_url 即带版本号的本地址",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in images.IMAGE_TYPES}, "description": "图片"},
        **responses(404, 422, 429),
    },
)
async def get_reward_picture(
    reward_id: RewardId,
    v: Annotated[str | None, Query(max_length=32, description="版本号（image_url 中带有）")] = None,
) -> Response:
    picture = await rewards.get_picture(reward_id=reward_id)
    versioned = v == picture_version(picture.updated_at)
    return Response(
        picture.content,
        media_type=picture.content_type,
        headers={
            "Cache-Control": PICTURE_CACHE_VERSIONED if versioned else PICTURE_CACHE_LATEST,
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/rewards/{reward_id}/stock",
    response_model=RewardOut,
    summary="增减库存（该社区工作人员），库存不会小于 0",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def change_stock(reward_id: RewardId, body: StockChangeIn, actor: StaffUser) -> RewardOut:
    return RewardOut.of(
        await rewards.change_stock(actor=actor, reward_id=reward_id, delta=body.delta)
    )


@router.post(
    "/rewards/{reward_id}/redeem",
    status_code=201,
    response_model=RedemptionOut,
    summary="兑换礼品：扣积分、减库存、计入每人限兑，得到领取码",
    responses=responses(401, 404, 409, 422, 429),
)
async def redeem_reward(reward_id: RewardId, user: CurrentUser, once: Idempotent) -> JSONResponse:
    if unguarded_switch.enabled("redeem"):
        # TEST ONLY: the race tests' control case, the key and the redemption unguarded.
        return await unguarded.redeem_request(once=once, user=user, reward_id=reward_id)

    async def redeem() -> RedemptionOut:
        return RedemptionOut.of(await rewards.redeem_reward(user=user, reward_id=reward_id))

    return await once.run(
        user_id=user.id, payload={"reward_id": reward_id}, status_code=201, action=redeem
    )


# --- redemptions ---


@router.get(
    "/me/redemptions",
    response_model=PageOut[RedemptionOut],
    summary="我的兑换与领取码，最新的在前",
    responses=responses(401, 422, 429),
)
async def list_my_redemptions(user: CurrentUser, page: PageParams) -> PageOut[RedemptionOut]:
    result = await rewards.list_my_redemptions(user=user, page=page)
    return RedemptionOut.page(result)


@router.get(
    "/redemptions",
    response_model=PageOut[StaffRedemptionOut],
    summary="社区的兑换记录（工作人员；不含领取码，核销时请居民出示）",
    responses=responses(401, 403, 422, 429),
)
async def list_redemptions(
    actor: StaffUser,
    page: PageParams,
    community_id: Annotated[int, Query(ge=1, le=MAX_ORG_ID)],
    status: Literal["pending_pickup", "fulfilled", "cancelled", "expired"] | None = None,
) -> PageOut[StaffRedemptionOut]:
    result = await rewards.list_redemptions(
        actor=actor, community_id=community_id, status=status, page=page
    )
    return StaffRedemptionOut.page(result)


@router.post(
    "/redemptions/lookup",
    response_model=StaffRedemptionOut,
    summary="按居民出示的领取码查兑换（该社区工作人员，核销前核对）",
    description="领取码放在请求体里，不出现在网址和访问日志中。",
    responses=responses(401, 403, 404, 422, 429),
)
async def look_up_redemption(body: VerifyIn, actor: StaffUser) -> StaffRedemptionOut:
    return StaffRedemptionOut.of(
        await rewards.find_by_code(actor=actor, pickup_code=body.pickup_code)
    )


@router.get(
    "/redemptions/{redemption_id}",
    response_model=RedemptionOut | StaffRedemptionOut,
    summary="兑换详情（兑换人或该社区工作人员；领取码只给兑换人本人）",
    responses=responses(401, 404, 422, 429),
)
async def get_redemption(
    redemption_id: RedemptionId, user: CurrentUser
) -> RedemptionOut | StaffRedemptionOut:
    redemption = await rewards.get_redemption(viewer=user, redemption_id=redemption_id)
    if redemption.user_id == user.id:
        return RedemptionOut.of(redemption)
    return StaffRedemptionOut.of(redemption)


@router.post(
    "/redemptions/verify",
    response_model=StaffRedemptionOut,
    summary="核销领取码（该社区工作人员），每个领取码只能核销一次",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def verify_redemption(body: VerifyIn, actor: StaffUser) -> StaffRedemptionOut:
    return StaffRedemptionOut.of(
        await rewards.verify_redemption(actor=actor, pickup_code=body.pickup_code)
    )


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response_model=StaffRedemptionOut,
    summary="取消待领取的兑换（该社区工作人员）：退还积分、库存与限兑次数",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def cancel_redemption(
    redemption_id: RedemptionId, body: CancelIn, actor: StaffUser
) -> StaffRedemptionOut:
    redemption = await rewards.cancel_redemption(
        actor=actor, redemption_id=redemption_id, reason=body.reason
    )
    return StaffRedemptionOut.of(redemption)
