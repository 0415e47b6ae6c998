"""Micro-wish and two-way board API: parse, authorize, call one service, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from backend.accounts.deps import CurrentUser, OptionalUser, StaffUser, StreetAdmin
from backend.core import images
from backend.core.errors import error_schema, responses
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import PageOut, PageParams
from backend.core.xlsx import MEDIA_TYPE, xlsx_response
from backend.wishes import board, contacts, export, lists, service
from backend.wishes.schemas import (
    AcceptIn,
    BoardCategory,
    BoardClaimIn,
    BoardClaimOut,
    BoardItemDetailOut,
    BoardItemIn,
    BoardItemOut,
    BoardKind,
    ClaimIn,
    ConfirmIn,
    FulfilIn,
    MatchingOut,
    ProgressIn,
    RemoveIn,
    ReviewIn,
    StaffStatusFilter,
    UnitCreditOut,
    WishCategory,
    WishDetailOut,
    WishIn,
    WishOut,
    WishStatusFilter,
)

router = APIRouter(tags=["wishes"])

WishId = Annotated[int, Path(ge=1, le=MAX_ID, description="心愿 id")]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="清单项目 id")]
ClaimId = Annotated[int, Path(ge=1, le=MAX_ID, description="对接 id")]
CommunityFilter = Annotated[int | None, Query(ge=1, le=MAX_ORG_ID, description="只看某个社区")]


def documented(*statuses: int, codes: dict[int, tuple[str, ...]]) -> dict[int | str, Any]:
    """`responses(*statuses)` with the stable codes each status can carry spelled out."""
    described = responses(*statuses)
    for status, named in codes.items():
        described[status] = error_schema(*named)
    return described


@router.post(
    "/wishes",
    status_code=201,
    response_model=WishDetailOut,
    summary="发布微心愿（本社区居民，审核后公开；每人每天限量）",
    responses=documented(
        401,
        codes={
            403: ("not_resident",),
            409: ("idempotency_in_progress",),
            422: ("invalid", "idempotency_mismatch"),
            429: ("rate_limited", "wishes_per_day_reached"),
        },
    ),
)
async def submit_wish(body: WishIn, user: CurrentUser, once: Idempotent) -> JSONResponse:
    async def submit() -> WishDetailOut:
        return WishDetailOut.of(await service.submit_wish(user=user, data=body))

    return await once.run(
        user_id=user.id, payload=body.model_dump(mode="json"), status_code=201, action=submit
    )


@router.get(
    "/wishes",
    response_model=PageOut[WishOut],
    summary="心愿墙：已审核的心愿（最新的在前，心愿人姓名脱敏）",
    responses=responses(422, 429),
)
async def list_wishes(
    page: PageParams,
    community_id: CommunityFilter = None,
    status: Annotated[WishStatusFilter | None, Query(description="默认全部已审核的心愿")] = None,
    category: Annotated[WishCategory | None, Query()] = None,
) -> PageOut[WishOut]:
    return WishOut.page(
        await lists.list_wishes(
            page=page, community_id=community_id, status=status, category=category
        )
    )


@router.get(
    "/wishes/{wish_id}",
    response_model=WishDetailOut,
    summary="心愿详情（心愿人、认领人与工作人员可见更多）",
    responses=responses(404, 422, 429),
)
async def get_wish(wish_id: WishId, user: OptionalUser) -> WishDetailOut:
    return WishDetailOut.of(await contacts.get_wish(viewer=user, wish_id=wish_id))


@router.get(
    "/wishes/{wish_id}/photo",
    summary="完成照片（心愿人、认领人与工作人员）",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
        **responses(401, 404, 422, 429),
    },
)
async def get_wish_photo(wish_id: WishId, user: CurrentUser) -> Response:
    photo = await contacts.get_wish_photo(viewer=user, wish_id=wish_id)
    return Response(
        photo.content, media_type=photo.content_type, headers={"Cache-Control": "private, no-store"}
    )


@router.post(
    "/wishes/{wish_id}/review",
    response_model=WishDetailOut,
    summary="审核心愿（该社区工作人员）：通过即公开，不通过须说明原因",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def review_wish(wish_id: WishId, body: ReviewIn, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(
        await service.review_wish(
            actor=user, wish_id=wish_id, approve=body.approve, reason=body.reason
        )
    )


@router.post(
    "/wishes/{wish_id}/claim",
    response_model=WishDetailOut,
    summary="认领心愿（先到先得；可代表所在单位认领）。认领后可见社区联系人和脱敏的心愿人手机号，"
    "心愿人接受认领后才可见其联系方式",
    responses=documented(
        401,
        404,
        codes={
            403: ("own_wish", "not_eligible", "not_unit_member"),
            409: ("already_claimed", "not_open", "claim_limit_reached", "idempotency_in_progress"),
            422: ("invalid", "idempotency_mismatch"),
            429: ("rate_limited", "claim_cooldown", "claims_per_day_reached"),
        },
    ),
)
async def claim_wish(
    wish_id: WishId,
    user: CurrentUser,
    once: Idempotent,
    body: ClaimIn | None = None,
) -> JSONResponse:
    unit_id = body.unit_id if body else None

    async def claim() -> WishDetailOut:
        return WishDetailOut.of(
            await service.claim_wish(user=user, wish_id=wish_id, unit_id=unit_id)
        )

    return await once.run(
        user_id=user.id, payload={"unit_id": unit_id}, status_code=200, action=claim
    )


@router.post(
    "/wishes/{wish_id}/accept",
    response_model=WishDetailOut,
    summary="接受认领（心愿人，或本社区工作人员代为）：向该认领人告知心愿人的联系方式"
    "（心愿人选择由社区联系时不告知），记入进展记录",
    responses=documented(
        401,
        404,
        429,
        codes={
            403: ("not_poster_or_staff",),
            409: ("not_claimed", "claimer_changed"),
            422: ("invalid",),
        },
    ),
)
async def accept_wish(wish_id: WishId, body: AcceptIn, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(
        await contacts.accept_wish(actor=user, wish_id=wish_id, claimer_id=body.claimer_id)
    )


@router.post(
    "/wishes/{wish_id}/release",
    response_model=WishDetailOut,
    summary="放弃认领（认领人）：心愿重新开放，之后须等待一段时间才能再认领",
    responses=documented(401, 404, 422, 429, codes={403: ("not_claimer",), 409: ("not_claimed",)}),
)
async def release_wish(wish_id: WishId, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(await service.release_wish(user=user, wish_id=wish_id))


@router.post(
    "/wishes/{wish_id}/fulfil",
    response_model=WishDetailOut,
    summary="完成心愿（认领人）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def fulfil_wish(wish_id: WishId, body: FulfilIn, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(await service.fulfil_wish(user=user, wish_id=wish_id, note=body.note))


@router.post(
    "/wishes/{wish_id}/fulfil-with-photo",
    response_model=WishDetailOut,
    summary="完成心愿并上传照片（认领人；multipart，供小程序 wx.uploadFile 使用）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def fulfil_wish_with_photo(
    wish_id: WishId,
    user: CurrentUser,
    note: Annotated[str, Form(max_length=500, description="完成情况说明")],
    photo: Annotated[UploadFile, File(description="JPG、PNG 或 WebP，不超过 2 MB")],
) -> WishDetailOut:
    content = await photo.read(images.MAX_IMAGE_BYTES + 1)
    return WishDetailOut.of(
        await service.fulfil_wish(
            user=user, wish_id=wish_id, note=note, photo=(photo.content_type or "", content)
        )
    )


@router.post(
    "/wishes/{wish_id}/confirm",
    response_model=WishDetailOut,
    summary="确认并评价（心愿人）：认领人获得积分",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def confirm_wish(wish_id: WishId, body: ConfirmIn, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(
        await service.confirm_wish(
            user=user, wish_id=wish_id, rating=body.rating, thanks=body.thanks
        )
    )


@router.post(
    "/wishes/{wish_id}/withdraw",
    response_model=WishDetailOut,
    summary="撤回心愿（心愿人，未被认领时）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def withdraw_wish(wish_id: WishId, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(await service.withdraw_wish(user=user, wish_id=wish_id))


@router.post(
    "/wishes/{wish_id}/remove",
    response_model=WishDetailOut,
    summary="关闭不当心愿（该社区工作人员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def remove_wish(wish_id: WishId, body: RemoveIn, user: CurrentUser) -> WishDetailOut:
    return WishDetailOut.of(
        await service.remove_wish(actor=user, wish_id=wish_id, reason=body.reason)
    )


@router.get(
    "/me/wishes",
    response_model=PageOut[WishOut],
    summary="我发布的心愿",
    responses=responses(401, 422, 429),
)
async def list_my_wishes(user: CurrentUser, page: PageParams) -> PageOut[WishOut]:
    return WishOut.page(await lists.list_my_wishes(user=user, page=page))


@router.get(
    "/me/wish-claims",
    response_model=PageOut[WishOut],
    summary="我认领的心愿",
    responses=responses(401, 422, 429),
)
async def list_my_claims(user: CurrentUser, page: PageParams) -> PageOut[WishOut]:
    return WishOut.page(await lists.list_my_claims(user=user, page=page))


@router.get(
    "/staff/wishes",
    response_model=PageOut[WishDetailOut],
    summary="工作人员：本社区的心愿（含待审核，标出疑似个人信息）",
    responses=responses(401, 403, 422, 429),
)
async def list_staff_wishes(
    user: StaffUser,
    page: PageParams,
    community_id: CommunityFilter = None,
    status: Annotated[StaffStatusFilter | None, Query()] = None,
) -> PageOut[WishDetailOut]:
    return WishDetailOut.page(
        await lists.list_staff_wishes(
            actor=user, page=page, community_id=community_id, status=status
        )
    )


@router.get(
    "/staff/wishes/unit-credits",
    response_model=list[UnitCreditOut],
    summary="工作人员：驻区单位认领统计",
    responses=responses(401, 403, 422, 429),
)
async def unit_credits(
    user: StaffUser, community_id: CommunityFilter = None
) -> list[UnitCreditOut]:
    credits = await lists.unit_credits(actor=user, community_id=community_id)
    return [UnitCreditOut.of(c) for c in credits]


@router.get(
    "/staff/wishes/export.xlsx",
    summary="工作人员：导出心愿与双向认领（Excel）",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}, **responses(401, 403, 422, 429)},
)
async def export_wishes(user: StaffUser, community_id: CommunityFilter = None) -> Response:
    content = await export.export_wishes_xlsx(actor=user, community_id=community_id)
    return xlsx_response("wishes.xlsx", content)


# --- the two-way board ---


@router.post(
    "/board/items",
    status_code=201,
    response_model=BoardItemDetailOut,
    tags=["board"],
    summary="发布需求（社区工作人员）或资源（驻区单位成员），每人每天限量",
    responses=documented(
        401,
        codes={
            403: ("forbidden", "not_unit_member"),
            409: ("idempotency_in_progress",),
            422: ("invalid", "idempotency_mismatch"),
            429: ("rate_limited", "board_items_per_day_reached"),
        },
    ),
)
async def publish_board_item(
    body: BoardItemIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def publish() -> BoardItemDetailOut:
        return BoardItemDetailOut.of(await board.publish_item(actor=user, data=body))

    return await once.run(
        user_id=user.id, payload=body.model_dump(), status_code=201, action=publish
    )


@router.get(
    "/board/items",
    response_model=PageOut[BoardItemOut],
    tags=["board"],
    summary="双向认领清单：社区需求与单位资源",
    responses=responses(422, 429),
)
async def list_board_items(
    page: PageParams,
    kind: Annotated[BoardKind | None, Query(description="need 需求 / resource 资源")] = None,
    community_id: CommunityFilter = None,
    category: Annotated[BoardCategory | None, Query()] = None,
    open_only: Annotated[bool, Query(description="只看仍可认领的")] = False,
) -> PageOut[BoardItemOut]:
    return BoardItemOut.page(
        await board.list_items(
            page=page, kind=kind, community_id=community_id, category=category, open_only=open_only
        )
    )


@router.get(
    "/board/items/{item_id}",
    response_model=BoardItemDetailOut,
    tags=["board"],
    summary="清单项目详情与对接情况",
    responses=responses(404, 422, 429),
)
async def get_board_item(item_id: ItemId, user: OptionalUser) -> BoardItemDetailOut:
    return BoardItemDetailOut.of(await board.get_item(viewer=user, item_id=item_id))


@router.post(
    "/board/items/{item_id}/claims",
    status_code=201,
    response_model=BoardClaimOut,
    tags=["board"],
    summary="认领：单位认领社区需求，社区认领单位资源（名额有限）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def claim_board_item(
    item_id: ItemId, body: BoardClaimIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def claim() -> BoardClaimOut:
        return BoardClaimOut.of(
            await board.claim_item(
                actor=user, item_id=item_id, unit_id=body.unit_id, community_id=body.community_id
            )
        )

    return await once.run(user_id=user.id, payload=body.model_dump(), status_code=201, action=claim)


@router.post(
    "/board/items/{item_id}/close",
    response_model=BoardItemDetailOut,
    tags=["board"],
    summary="停止认领（发布方）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def close_board_item(item_id: ItemId, user: CurrentUser) -> BoardItemDetailOut:
    return BoardItemDetailOut.of(await board.close_item(actor=user, item_id=item_id))


@router.get(
    "/me/board-claims",
    response_model=PageOut[BoardClaimOut],
    tags=["board"],
    summary="与我方有关的对接（我方发布或我方认领）",
    responses=responses(401, 422, 429),
)
async def list_my_board_claims(user: CurrentUser, page: PageParams) -> PageOut[BoardClaimOut]:
    return BoardClaimOut.page(await board.list_claims_for(actor=user, page=page))


@router.post(
    "/board/claims/{claim_id}/confirm",
    response_model=BoardClaimOut,
    tags=["board"],
    summary="确认对接（发布方）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def confirm_board_claim(claim_id: ClaimId, user: CurrentUser) -> BoardClaimOut:
    return BoardClaimOut.of(await board.confirm_claim(actor=user, claim_id=claim_id))


@router.post(
    "/board/claims/{claim_id}/decline",
    response_model=BoardClaimOut,
    tags=["board"],
    summary="婉拒对接（发布方），名额释放",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def decline_board_claim(claim_id: ClaimId, user: CurrentUser) -> BoardClaimOut:
    return BoardClaimOut.of(await board.decline_claim(actor=user, claim_id=claim_id))


@router.post(
    "/board/claims/{claim_id}/cancel",
    response_model=BoardClaimOut,
    tags=["board"],
    summary="取消认领（认领方），名额释放",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def cancel_board_claim(claim_id: ClaimId, user: CurrentUser) -> BoardClaimOut:
    return BoardClaimOut.of(await board.cancel_claim(actor=user, claim_id=claim_id))


@router.post(
    "/board/claims/{claim_id}/progress",
    response_model=BoardClaimOut,
    tags=["board"],
    summary="记录进展（对接双方）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def record_board_progress(
    claim_id: ClaimId, body: ProgressIn, user: CurrentUser
) -> BoardClaimOut:
    return BoardClaimOut.of(
        await board.record_progress(actor=user, claim_id=claim_id, note=body.note)
    )


@router.post(
    "/board/claims/{claim_id}/done",
    response_model=BoardClaimOut,
    tags=["board"],
    summary="确认完成（双方都确认后对接完成）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def mark_board_claim_done(claim_id: ClaimId, user: CurrentUser) -> BoardClaimOut:
    return BoardClaimOut.of(await board.mark_done(actor=user, claim_id=claim_id))


@router.get(
    "/board/matching",
    response_model=MatchingOut,
    tags=["board"],
    summary="街道管理员：各社区需求与资源的对接情况和匹配建议",
    responses=responses(401, 403, 429),
)
async def board_matching(user: StreetAdmin) -> MatchingOut:
    return MatchingOut.of(await board.matching(actor=user))
