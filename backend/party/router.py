"""Party-member API: 报到 and review, service posts and claims, QR check-in, service
records and hours, the 双报到 report (JSON and Excel)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from backend.accounts.deps import CurrentUser, OptionalUser, StaffUser
from backend.core import xlsx
from backend.core.config import get_settings
from backend.core.errors import NotFound, error_schema, responses
from backend.core.idempotency import Idempotent
from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import PageParams
from backend.core.text import BoundedDate
from backend.party import hours, posts, records, registrations, reports
from backend.party.models import TIME_SLOTS
from backend.party.schemas import (
    MAX_TERM,
    MIN_TERM,
    AssignIn,
    AssignmentList,
    AssignmentOut,
    CheckinCodeOut,
    CodeIn,
    CorrectionIn,
    HoursOut,
    MemberServiceRecordsOut,
    OfflineRecordIn,
    PostIn,
    PostOut,
    PostPage,
    PostPatch,
    RecordDetailOut,
    RecordOut,
    RecordPage,
    RegistrationIn,
    RegistrationOut,
    RegistrationPage,
    RegistrationStatus,
    RemoveIn,
    ReportOut,
    ReviewIn,
    SkillsOut,
)
from backend.party.views import RosterFilter

router = APIRouter(tags=["party"])

ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
CommunityQuery = Annotated[int | None, Query(ge=1, le=MAX_ORG_ID, description="社区 id")]
DateQuery = Annotated[BoundedDate | None, Query(description="本地日期 YYYY-MM-DD")]


# --- 报到 ---


@router.get(
    "/party/skills",
    response_model=SkillsOut,
    summary="报到表单的特长与服务时间选项",
    responses=responses(422, 429),
)
async def get_skills() -> SkillsOut:
    return SkillsOut.of(get_settings().party_skills, TIME_SLOTS)


@router.post(
    "/party/registrations",
    status_code=201,
    response_model=RegistrationOut,
    summary="在职党员报到（到居住社区），待社区审核；改报到其他社区时原报到结束",
    responses=responses(401, 409, 422, 429),
)
async def create_registration(
    body: RegistrationIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def run() -> RegistrationOut:
        return RegistrationOut.of(await registrations.register(user=user, data=body))

    return await once.run(
        user_id=user.id, payload=body.model_dump(mode="json"), status_code=201, action=run
    )


@router.get(
    "/party/registrations",
    response_model=RegistrationPage,
    summary="报到名册 / 待审核队列（本社区工作人员），可搜索筛选",
    responses=responses(401, 403, 422, 429),
)
async def list_registrations(
    actor: StaffUser,
    page: PageParams,
    community_id: CommunityQuery = None,
    status: RegistrationStatus | None = None,
    q: Annotated[str | None, Query(max_length=32, description="姓名、单位、党组织或手机号")] = None,
    skill: Annotated[str | None, Query(max_length=16)] = None,
    work_unit: Annotated[str | None, Query(max_length=64)] = None,
) -> RegistrationPage:
    result = await registrations.list_registrations(
        actor=actor,
        page=page,
        filters=RosterFilter(community_id, status, q, skill, work_unit),
    )
    return RegistrationPage.of(result)


@router.get(
    "/party/registrations/export",
    summary="导出报到名册（Excel）",
    response_class=Response,
    responses={
        200: {"content": {xlsx.MEDIA_TYPE: {}}, "description": "xlsx 文件"},
        **responses(401, 403, 422, 429),
    },
)
async def export_registrations(
    actor: StaffUser,
    community_id: CommunityQuery = None,
    status: RegistrationStatus | None = None,
    q: Annotated[str | None, Query(max_length=32)] = None,
    skill: Annotated[str | None, Query(max_length=16)] = None,
    work_unit: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    content = await reports.roster_xlsx(
        actor=actor, filters=RosterFilter(community_id, status, q, skill, work_unit)
    )
    return xlsx.xlsx_response("party-roster.xlsx", content)


@router.get(
    "/party/registrations/mine",
    response_model=RegistrationOut,
    summary="我的报到（进行中的，否则最近一次）",
    responses=responses(401, 404, 422, 429),
)
async def get_my_registration(user: CurrentUser) -> RegistrationOut:
    registration = await registrations.my_registration(user=user)
    if registration is None:
        raise NotFound("您还没有报到")
    return RegistrationOut.of(registration)


@router.delete(
    "/party/registrations/mine",
    response_model=RegistrationOut,
    summary="退出报到（岗位与党员身份随之结束）",
    responses=responses(401, 404, 422, 429),
)
async def withdraw_my_registration(user: CurrentUser) -> RegistrationOut:
    return RegistrationOut.of(await registrations.withdraw_registration(user=user))


@router.get(
    "/party/registrations/{registration_id}",
    response_model=RegistrationOut,
    summary="一条报到信息（本人或本社区工作人员）",
    responses=responses(401, 404, 422, 429),
)
async def get_registration(registration_id: ObjectId, user: CurrentUser) -> RegistrationOut:
    return RegistrationOut.of(
        await registrations.get_registration(viewer=user, registration_id=registration_id)
    )


@router.post(
    "/party/registrations/{registration_id}/review",
    response_model=RegistrationOut,
    summary="审核报到：通过（成为本社区在职党员）或驳回（须说明原因）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def review_registration(
    registration_id: ObjectId, body: ReviewIn, actor: StaffUser
) -> RegistrationOut:
    registration = await registrations.review_registration(
        actor=actor, registration_id=registration_id, data=body
    )
    return RegistrationOut.of(registration)


# --- 岗位 ---


@router.post(
    "/posts",
    status_code=201,
    response_model=PostOut,
    summary="设立服务岗位或社区任务（本社区工作人员）",
    responses=responses(401, 403, 409, 422, 429),
)
async def create_post(body: PostIn, actor: StaffUser, once: Idempotent) -> JSONResponse:
    async def run() -> PostOut:
        return PostOut.of(await posts.create_post(actor=actor, data=body))

    return await once.run(
        user_id=actor.id, payload=body.model_dump(mode="json"), status_code=201, action=run
    )


@router.get(
    "/posts",
    response_model=PostPage,
    summary="服务岗位列表（默认本年度）；登录的党员可看到与特长相符的推荐",
    responses=responses(422, 429),
)
async def list_posts(
    viewer: OptionalUser,
    page: PageParams,
    community_id: CommunityQuery = None,
    term: Annotated[int | None, Query(ge=MIN_TERM, le=MAX_TERM)] = None,
    kind: Literal["post", "task"] | None = None,
) -> PostPage:
    views, next_cursor = await posts.list_posts(
        viewer=viewer, page=page, community_id=community_id, term=term, kind=kind
    )
    return PostPage.of(views, next_cursor)


@router.get(
    "/posts/{post_id}",
    response_model=PostOut,
    summary="一个服务岗位",
    responses=responses(404, 422, 429),
)
async def get_post(post_id: ObjectId, viewer: OptionalUser) -> PostOut:
    return PostOut.of(await posts.view_post(viewer=viewer, post_id=post_id))


@router.patch(
    "/posts/{post_id}",
    response_model=PostOut,
    summary="修改岗位（名额不能少于已认领人数）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def update_post(post_id: ObjectId, body: PostPatch, actor: StaffUser) -> PostOut:
    return PostOut.of(await posts.update_post(actor=actor, post_id=post_id, data=body))


@router.post(
    "/posts/{post_id}/claim",
    response_model=AssignmentOut,
    summary="认领岗位（已报到党员，每人每年度一个，名额有限）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def claim_post(post_id: ObjectId, user: CurrentUser, once: Idempotent) -> JSONResponse:
    async def run() -> AssignmentOut:
        return AssignmentOut.of(await posts.claim_post(user=user, post_id=post_id))

    return await once.run(user_id=user.id, payload=None, status_code=200, action=run)


@router.post(
    "/posts/{post_id}/release",
    response_model=AssignmentOut,
    summary="退出我认领的岗位",
    responses=responses(401, 404, 409, 422, 429),
)
async def release_post(post_id: ObjectId, user: CurrentUser) -> AssignmentOut:
    return AssignmentOut.of(await posts.release_post(user=user, post_id=post_id))


@router.get(
    "/posts/{post_id}/assignments",
    response_model=AssignmentList,
    summary="岗位的认领人（本社区工作人员）",
    responses=responses(401, 403, 404, 422, 429),
)
async def list_assignments(post_id: ObjectId, actor: StaffUser) -> AssignmentList:
    return AssignmentList.of(await posts.list_assignments(actor=actor, post_id=post_id))


@router.post(
    "/posts/{post_id}/assignments",
    status_code=201,
    response_model=AssignmentOut,
    summary="为党员分配岗位（本社区工作人员；同样受名额与每年一岗限制）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def assign_post(
    post_id: ObjectId, body: AssignIn, actor: StaffUser, once: Idempotent
) -> JSONResponse:
    async def run() -> AssignmentOut:
        assignment = await posts.assign_post(actor=actor, post_id=post_id, user_id=body.user_id)
        return AssignmentOut.of(assignment)

    return await once.run(
        user_id=actor.id, payload=body.model_dump(mode="json"), status_code=201, action=run
    )


@router.post(
    "/party/assignments/{assignment_id}/remove",
    response_model=AssignmentOut,
    summary="把党员从岗位上撤下（本社区工作人员）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def remove_assignment(
    assignment_id: ObjectId, body: RemoveIn, actor: StaffUser
) -> AssignmentOut:
    assignment = await posts.remove_assignment(actor=actor, assignment_id=assignment_id, data=body)
    return AssignmentOut.of(assignment)


@router.get(
    "/me/party/posts",
    response_model=AssignmentList,
    summary="我的岗位（当前的在前）",
    responses=responses(401, 422, 429),
)
async def my_posts(user: CurrentUser) -> AssignmentList:
    return AssignmentList.of(await posts.my_assignments(user=user))


# --- 签到 ---


@router.post(
    "/posts/{post_id}/checkin-code",
    response_model=CheckinCodeOut,
    summary="岗位当前的签到码（本社区工作人员出示二维码，每 30 秒更新）",
    responses=responses(401, 403, 404, 422, 429),
)
async def checkin_code(post_id: ObjectId, actor: StaffUser) -> CheckinCodeOut:
    return CheckinCodeOut.of(await records.checkin_code(actor=actor, post_id=post_id))


@router.post(
    "/posts/{post_id}/checkin",
    status_code=201,
    response_model=RecordOut,
    summary="扫码签到，开始一次服务（只在岗位的服务时间内）",
    responses={
        **responses(401, 404, 422),
        403: error_schema("not_party_member", "not_post_holder"),
        409: error_schema("checkin_code_invalid", "post_off_hours", "already_checked_in"),
        429: error_schema("rate_limited", "checkin_locked"),
    },
)
async def check_in(
    post_id: ObjectId, body: CodeIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def run() -> RecordOut:
        return RecordOut.of(await records.check_in(user=user, post_id=post_id, code=body.code))

    return await once.run(
        user_id=user.id, payload=body.model_dump(mode="json"), status_code=201, action=run
    )


@router.post(
    "/posts/{post_id}/checkout",
    response_model=RecordOut,
    summary="扫码签退，结束服务并计入时长与积分",
    responses={
        **responses(401, 403, 404, 422),
        409: error_schema("checkin_code_invalid", "not_checked_in"),
        429: error_schema("rate_limited", "checkin_locked"),
    },
)
async def check_out(
    post_id: ObjectId, body: CodeIn, user: CurrentUser, once: Idempotent
) -> JSONResponse:
    async def run() -> RecordOut:
        return RecordOut.of(await records.check_out(user=user, post_id=post_id, code=body.code))

    return await once.run(
        user_id=user.id, payload=body.model_dump(mode="json"), status_code=200, action=run
    )


# --- 服务记录与时长 ---


@router.get(
    "/me/party/service",
    response_model=MemberServiceRecordsOut,
    summary="我的服务记录与时长",
    responses=responses(401, 422, 429),
)
async def my_service(user: CurrentUser, page: PageParams) -> MemberServiceRecordsOut:
    return MemberServiceRecordsOut.of(await records.my_service(user=user, page=page))


@router.post(
    "/party/service-records",
    status_code=201,
    response_model=RecordDetailOut,
    summary="补录线下服务（本社区工作人员，留痕）",
    responses=responses(401, 403, 409, 422, 429),
)
async def add_offline_record(
    body: OfflineRecordIn, actor: StaffUser, once: Idempotent
) -> JSONResponse:
    async def run() -> RecordDetailOut:
        record = await records.add_offline_record(actor=actor, data=body)
        return RecordDetailOut.of(record, await records.record_audits(record=record))

    return await once.run(
        user_id=actor.id, payload=body.model_dump(mode="json"), status_code=201, action=run
    )


@router.get(
    "/party/service-records",
    response_model=RecordPage,
    summary="社区的服务记录（本社区工作人员）",
    responses=responses(401, 403, 422, 429),
)
async def list_records(
    actor: StaffUser,
    page: PageParams,
    community_id: Annotated[int, Query(ge=1, le=MAX_ORG_ID)],
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    post_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Literal["open", "closed", "expired"] | None = None,
) -> RecordPage:
    result = await records.list_records(
        actor=actor,
        page=page,
        community_id=community_id,
        user_id=user_id,
        post_id=post_id,
        status=status,
    )
    return RecordPage.of(result)


@router.get(
    "/party/service-records/{record_id}",
    response_model=RecordDetailOut,
    summary="一条服务记录及其修改留痕（本人或本社区工作人员）",
    responses=responses(401, 404, 422, 429),
)
async def get_record(record_id: ObjectId, user: CurrentUser) -> RecordDetailOut:
    record = await records.get_record(viewer=user, record_id=record_id)
    return RecordDetailOut.of(record, await records.record_audits(record=record))


@router.patch(
    "/party/service-records/{record_id}",
    response_model=RecordDetailOut,
    summary="更正服务记录的起止时间（本社区工作人员，须说明原因，留痕）",
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def correct_record(
    record_id: ObjectId, body: CorrectionIn, actor: StaffUser
) -> RecordDetailOut:
    record = await records.correct_record(actor=actor, record_id=record_id, data=body)
    return RecordDetailOut.of(record, await records.record_audits(record=record))


@router.get(
    "/party/hours",
    response_model=HoursOut,
    summary="服务时长汇总：按党员、岗位或社区（本地日期范围，默认本年度）",
    responses=responses(401, 403, 422, 429),
)
async def service_hours(
    actor: StaffUser,
    group_by: Literal["member", "post", "community"] = "member",
    community_id: CommunityQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> HoursOut:
    start, end = hours.date_range(start_date, end_date)
    rows = await hours.service_hours(
        actor=actor, group_by=group_by, community_id=community_id, start_date=start, end_date=end
    )
    return HoursOut.of(group_by, start, end, rows)


# --- 双报到 ---


@router.get(
    "/party/report",
    response_model=ReportOut,
    summary="双报到报表：按工作单位与党员（报到状态、岗位、服务时长、参加活动、完成心愿）",
    responses=responses(401, 403, 422, 429),
)
async def party_report(
    actor: StaffUser,
    community_id: CommunityQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> ReportOut:
    report = await reports.party_report(
        actor=actor, community_id=community_id, start_date=start_date, end_date=end_date
    )
    return ReportOut.of(report)


@router.get(
    "/party/report.xlsx",
    summary="双报到报表（Excel，可发给各单位党组织）",
    response_class=Response,
    responses={
        200: {"content": {xlsx.MEDIA_TYPE: {}}, "description": "xlsx 文件"},
        **responses(401, 403, 422, 429),
    },
)
async def party_report_xlsx(
    actor: StaffUser,
    community_id: CommunityQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> Response:
    content = await reports.report_xlsx(
        actor=actor, community_id=community_id, start_date=start_date, end_date=end_date
    )
    return xlsx.xlsx_response("party-report.xlsx", content)
