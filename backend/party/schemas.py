"""Request and response bodies of the party-member API (报到, 岗位, 服务记录, 双报到)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.text import InModel
from backend.party import service
from backend.party.models import (
    PartyRegistration,
    PostAssignment,
    ServiceRecord,
    ServiceRecordAudit,
)

Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]
RegistrationStatus = Literal["pending", "approved", "rejected", "ended"]


class SkillsOut(BaseModel):
    skills: list[str] = Field(description="报到表单可选的特长（另可在补充说明里填写）")
    time_slots: list[str] = Field(description="可服务时间选项")


class RegistrationIn(InModel):
    name: Annotated[Text, Field(min_length=1, max_length=32)]
    phone: Annotated[Text, Field(min_length=11, max_length=20, description="11 位手机号")]
    work_unit: Annotated[Text, Field(min_length=1, max_length=64, description="工作单位")]
    party_org: Annotated[Text, Field(min_length=1, max_length=64, description="所在党组织")]
    party_org_contact: Annotated[Text, Field(max_length=32, description="党组织联系人")] = ""
    party_org_phone: Annotated[Text, Field(max_length=20, description="党组织联系电话")] = ""
    community_id: OrgId = Field(description="居住地所在社区")
    address: Annotated[Text, Field(max_length=64, description="居住楼栋/门牌")] = ""
    skills: list[Annotated[Text, Field(max_length=16)]] = Field(default=[], max_length=12)
    skills_note: Annotated[Text, Field(max_length=128, description="其他特长、兴趣")] = ""
    preferred_post_ids: list[Id] = Field(default=[], max_length=5, description="意向岗位")
    available_times: list[Annotated[Text, Field(max_length=16)]] = Field(default=[], max_length=5)
    available_note: Annotated[Text, Field(max_length=128, description="可服务时间说明")] = ""

    def form(self) -> service.RegistrationForm:
        return service.RegistrationForm(**self.model_dump())


class RegistrationOut(BaseModel):
    id: int
    user_id: int
    community_id: int
    name: str
    phone: str | None = Field(description="已打码，如 138****1234")
    work_unit: str
    party_org: str
    party_org_contact: str
    party_org_phone: str | None = Field(description="已打码")
    address: str
    skills: list[str]
    skills_note: str
    preferred_post_ids: list[int]
    available_times: list[str]
    available_note: str
    status: RegistrationStatus
    status_name: str
    review_reason: str
    reviewed_at: datetime | None
    approved_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    created_at: datetime

    @classmethod
    def of(cls, registration: PartyRegistration) -> RegistrationOut:
        return cls(
            id=registration.id,
            user_id=registration.user_id,
            community_id=registration.community_id,
            name=registration.name,
            phone=service.registration_phone(registration),
            work_unit=registration.work_unit,
            party_org=registration.party_org,
            party_org_contact=registration.party_org_contact,
            party_org_phone=service.registration_org_phone(registration),
            address=registration.address,
            skills=registration.skills,
            skills_note=registration.skills_note,
            preferred_post_ids=registration.preferred_post_ids,
            available_times=registration.available_times,
            available_note=registration.available_note,
            status=registration.status,
            status_name=service.status_name(registration.status),
            review_reason=registration.review_reason,
            reviewed_at=registration.reviewed_at,
            approved_at=registration.approved_at,
            ended_at=registration.ended_at,
            end_reason=registration.end_reason,
            created_at=registration.created_at,
        )


class RegistrationPage(BaseModel):
    items: list[RegistrationOut]
    next_cursor: str | None = None


class ReviewIn(InModel):
    approve: bool = Field(strict=True)
    reason: Annotated[Text, Field(max_length=200, description="驳回时必填")] = ""


# Service hours in minutes after local midnight (420 = 07:00, 1440 = 24:00); QR check-in
# is accepted from open_from up to, not including, open_until.
OpenFrom = Annotated[
    int,
    Field(ge=0, lt=service.MINUTES_PER_DAY, strict=True, description="服务开始（零点起的分钟数）"),
]
OpenUntil = Annotated[
    int,
    Field(gt=0, le=service.MINUTES_PER_DAY, strict=True, description="服务结束（零点起的分钟数）"),
]


class PostIn(InModel):
    community_id: OrgId
    title: Annotated[Text, Field(min_length=1, max_length=64)]
    description: Annotated[Text, Field(max_length=2000, description="岗位职责")] = ""
    location: Annotated[Text, Field(max_length=64)] = ""
    capacity: int = Field(default=1, ge=0, le=service.MAX_CAPACITY, strict=True)
    term: int = Field(ge=service.MIN_TERM, le=service.MAX_TERM, strict=True, description="年度")
    skills: list[Annotated[Text, Field(max_length=16)]] = Field(default=[], max_length=12)
    kind: Literal["post", "task"] = Field(
        default="post", description="post 岗位（可认领，限名额）；task 社区任务（无需认领）"
    )
    open_from: OpenFrom = service.DEFAULT_OPEN_FROM
    open_until: OpenUntil = service.DEFAULT_OPEN_UNTIL

    def form(self) -> service.PostForm:
        return service.PostForm(**self.model_dump())


class PostPatch(InModel):
    title: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    description: Annotated[Text, Field(max_length=2000)] | None = None
    location: Annotated[Text, Field(max_length=64)] | None = None
    capacity: int | None = Field(default=None, ge=0, le=service.MAX_CAPACITY, strict=True)
    skills: list[Annotated[Text, Field(max_length=16)]] | None = Field(default=None, max_length=12)
    status: Literal["active", "closed"] | None = None
    open_from: OpenFrom | None = None
    open_until: OpenUntil | None = None


class PostOut(BaseModel):
    id: int
    community_id: int
    term: int
    kind: Literal["post", "task"]
    title: str
    description: str
    location: str
    skills: list[str]
    capacity: int
    taken: int
    seats_left: int
    status: Literal["active", "closed"]
    open_from: int = Field(description="服务开始（零点起的分钟数），此前不能扫码签到")
    open_until: int = Field(description="服务结束（零点起的分钟数），此后不能扫码签到")
    opening_hours: str = Field(description="服务时间，如 07:00–21:00")
    matched_skills: list[str] = Field(description="与我的特长相符的要求（推荐依据）")
    suggested: bool = Field(description="是否推荐给我（特长相符）")
    held_by_me: bool

    @classmethod
    def of(cls, view: service.PostView) -> PostOut:
        post = view.post
        return cls(
            id=post.id,
            community_id=post.community_id,
            term=post.term,
            kind=post.kind,
            title=post.title,
            description=post.description,
            location=post.location,
            skills=post.skills,
            capacity=post.capacity,
            taken=post.taken,
            seats_left=view.seats_left,
            status=post.status,
            open_from=post.open_from,
            open_until=post.open_until,
            opening_hours=service.opening_hours(post),
            matched_skills=view.matched_skills,
            suggested=view.suggested,
            held_by_me=view.held_by_me,
        )


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None = None


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    user_id: int
    community_id: int
    term: int
    status: Literal["active", "released", "removed"]
    assigned_by_id: int | None = Field(description="工作人员分配时为其 id，本人认领时为空")
    started_at: datetime
    ended_at: datetime | None
    end_reason: str


class AssignmentList(BaseModel):
    items: list[AssignmentOut]


class AssignIn(InModel):
    user_id: Id


class RemoveIn(InModel):
    reason: Annotated[Text, Field(max_length=200)] = ""


class CheckinCodeOut(BaseModel):
    code: str = Field(description="6 位签到码，每 30 秒更新")
    expires_at: datetime
    url: str = Field(description="二维码中的签到链接")


class CodeIn(InModel):
    code: Annotated[Text, Field(min_length=1, max_length=16)]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_id: int | None
    action: Literal["created", "corrected", "expired"]
    reason: str
    before: dict | None
    after: dict | None
    created_at: datetime


class RecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    community_id: int
    post_id: int | None
    task: str
    source: Literal["qr", "offline"]
    status: Literal["open", "closed", "expired"]
    started_at: datetime
    ended_at: datetime | None
    raw_minutes: int = Field(description="签到到签退的分钟数")
    minutes: int = Field(description="计入的服务分钟数（每人每天有上限）")
    points: int = Field(description="这条记录获得的积分")
    note: str
    created_by_id: int | None


class RecordDetailOut(RecordOut):
    audits: list[AuditOut] = []

    @classmethod
    def of(cls, record: ServiceRecord, audits: list[ServiceRecordAudit]) -> RecordDetailOut:
        return cls(
            **RecordOut.model_validate(record).model_dump(),
            audits=[AuditOut.model_validate(a) for a in audits],
        )


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = None


class MemberServiceRecordsOut(BaseModel):
    total_minutes: int
    total_hours: float
    term_minutes: int = Field(description="本年度计入的服务分钟数")
    term_hours: float
    open_record: RecordOut | None = Field(description="尚未签退的签到")
    items: list[RecordOut]
    next_cursor: str | None = None


class OfflineRecordIn(InModel):
    user_id: Id
    community_id: OrgId
    post_id: Id | None = None
    task: Annotated[Text, Field(max_length=64, description="未关联岗位时填写服务事项")] = ""
    started_at: AwareDatetime
    ended_at: AwareDatetime
    note: Annotated[Text, Field(max_length=200)] = ""

    def form(self) -> service.OfflineRecordForm:
        return service.OfflineRecordForm(**self.model_dump())


class CorrectionIn(InModel):
    started_at: AwareDatetime
    ended_at: AwareDatetime
    reason: Annotated[Text, Field(min_length=1, max_length=200)]


class HoursRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: int = Field(description="成员、岗位或社区的 id（0 为未关联岗位的社区任务）")
    name: str
    minutes: int
    hours: float


class HoursOut(BaseModel):
    group_by: Literal["member", "post", "community"]
    start_date: date
    end_date: date
    items: list[HoursRowOut]


class MemberRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    name: str
    phone: str | None
    community: str
    work_unit: str
    party_org: str
    status: str
    posts: list[str]
    minutes: int
    hours: float
    activities: int = Field(description="参加活动次数（已签到）")
    wishes: int = Field(description="认领并完成的微心愿数")


class UnitRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    work_unit: str
    party_orgs: list[str]
    members: int
    approved: int
    with_post: int
    minutes: int
    hours: float
    activities: int
    wishes: int


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start_date: date
    end_date: date
    community: str | None
    total_minutes: int
    total_hours: float
    units: list[UnitRowOut]
    members: list[MemberRowOut]


def assignment_out(assignment: PostAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(assignment)
