"""Request and response bodies of the party-member API (报到, 岗位, 服务记录, 双报到).

The `*In` models hold every field limit and the Chinese name of each field (`title`), so
the H5 forms build the same models (`h5.forms.build`); the services check only what needs
the database, the clock or the configured options.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import Page
from backend.core.text import CONTROL_MESSAGE, InModel, has_forbidden
from backend.party import views
from backend.party.models import (
    PartyRegistration,
    PostAssignment,
    ServicePost,
    ServiceRecord,
    ServiceRecordAudit,
)
from backend.party.views import CheckinCode, HoursRow, MyService, PartyReport, PostView

MAX_SKILLS = 12
MAX_PREFERRED_POSTS = 5
MAX_CAPACITY = 1000
MIN_TERM, MAX_TERM = 2000, 2100
MINUTES_PER_DAY = 1440
# As the model's defaults: a post serves 07:00–21:00 unless its staff say otherwise.
DEFAULT_OPEN_FROM, DEFAULT_OPEN_UNTIL = 7 * 60, 21 * 60


Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]
RegistrationStatus = Literal["pending", "approved", "rejected", "ended"]
Skill = Annotated[Text, Field(max_length=16)]


class PartyIn(InModel):
    """A party body: its text fields are one line each, but those in `MULTILINE`.

    (InModel lets a newline through, as multi-line text needs. A validator of the type
    would make pydantic report a too-long text as a too-long list, so it is the model's.)"""

    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.MULTILINE:
            return value
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and has_forbidden(t, multiline=False) for t in texts):
            raise PydanticCustomError("text_control", CONTROL_MESSAGE)
        return value


class SkillsOut(BaseModel):
    skills: list[str] = Field(description="报到表单可选的特长（另可在补充说明里填写）")
    time_slots: list[str] = Field(description="可服务时间选项")

    @classmethod
    def of(cls, skills: list[str], time_slots: tuple[str, ...]) -> SkillsOut:
        return cls(skills=skills, time_slots=list(time_slots))


class RegistrationIn(PartyIn):
    name: Annotated[Text, Field(min_length=1, max_length=32, title="姓名")]
    # The number's format is the service's check (it reads what people type, +86 and all).
    phone: Annotated[
        Text, Field(min_length=11, max_length=20, title="手机号", description="11 位手机号")
    ]
    work_unit: Annotated[Text, Field(min_length=1, max_length=64, title="工作单位")]
    party_org: Annotated[Text, Field(min_length=1, max_length=64, title="所在党组织")]
    party_org_contact: Annotated[Text, Field(max_length=32, title="党组织联系人")] = ""
    party_org_phone: Annotated[Text, Field(max_length=20, title="党组织联系电话")] = ""
    community_id: OrgId = Field(title="居住社区", description="居住地所在社区")
    address: Annotated[
        Text, Field(max_length=64, title="居住楼栋", description="居住楼栋/门牌")
    ] = ""
    skills: list[Skill] = Field(default=[], max_length=MAX_SKILLS, title="特长")
    skills_note: Annotated[
        Text, Field(max_length=128, title="其他特长", description="其他特长、兴趣")
    ] = ""
    preferred_post_ids: list[Id] = Field(
        default=[], max_length=MAX_PREFERRED_POSTS, title="意向岗位"
    )
    available_times: list[Skill] = Field(default=[], max_length=5, title="可服务时间")
    available_note: Annotated[
        Text, Field(max_length=128, title="服务时间说明", description="可服务时间说明")
    ] = ""


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
            phone=views.registration_phone(registration),
            work_unit=registration.work_unit,
            party_org=registration.party_org,
            party_org_contact=registration.party_org_contact,
            party_org_phone=views.registration_org_phone(registration),
            address=registration.address,
            skills=registration.skills,
            skills_note=registration.skills_note,
            preferred_post_ids=registration.preferred_post_ids,
            available_times=registration.available_times,
            available_note=registration.available_note,
            status=registration.status,
            status_name=views.status_name(registration.status),
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

    @classmethod
    def of(cls, page: Page[PartyRegistration]) -> RegistrationPage:
        return cls(items=[RegistrationOut.of(r) for r in page.items], next_cursor=page.next_cursor)


class ReviewIn(PartyIn):
    approve: bool = Field(strict=True)
    reason: Annotated[Text, Field(max_length=200, title="驳回原因", description="驳回时必填")] = ""


# Service hours in minutes after local midnight (420 = 07:00, 1440 = 24:00); QR check-in
# is accepted from open_from up to, not including, open_until.
OpenFrom = Annotated[
    int,
    Field(
        ge=0,
        lt=MINUTES_PER_DAY,
        strict=True,
        title="服务开始时间",
        description="服务开始（零点起的分钟数）",
    ),
]
OpenUntil = Annotated[
    int,
    Field(
        gt=0,
        le=MINUTES_PER_DAY,
        strict=True,
        title="服务结束时间",
        description="服务结束（零点起的分钟数）",
    ),
]


class PostIn(PartyIn):
    MULTILINE = frozenset({"description"})

    community_id: OrgId = Field(title="社区")
    title: Annotated[Text, Field(min_length=1, max_length=64, title="岗位名称")]
    description: Annotated[Text, Field(max_length=2000, title="岗位职责")] = ""
    location: Annotated[Text, Field(max_length=64, title="服务地点")] = ""
    capacity: int = Field(default=1, ge=0, le=MAX_CAPACITY, strict=True, title="名额")
    term: int = Field(ge=MIN_TERM, le=MAX_TERM, strict=True, title="年度", description="年度")
    skills: list[Skill] = Field(default=[], max_length=MAX_SKILLS, title="所需特长")
    kind: Literal["post", "task"] = Field(
        default="post",
        title="类型",
        description="post 岗位（可认领，限名额）；task 社区任务（无需认领）",
    )
    open_from: OpenFrom = DEFAULT_OPEN_FROM
    open_until: OpenUntil = DEFAULT_OPEN_UNTIL


class PostPatch(PartyIn):
    MULTILINE = frozenset({"description"})

    title: Annotated[Text, Field(min_length=1, max_length=64, title="岗位名称")] | None = None
    description: Annotated[Text, Field(max_length=2000, title="岗位职责")] | None = None
    location: Annotated[Text, Field(max_length=64, title="服务地点")] | None = None
    capacity: int | None = Field(default=None, ge=0, le=MAX_CAPACITY, strict=True, title="名额")
    skills: list[Skill] | None = Field(default=None, max_length=MAX_SKILLS, title="所需特长")
    status: Literal["active", "closed"] | None = Field(default=None, title="状态")
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
    def of(cls, view: PostView | ServicePost) -> PostOut:
        if isinstance(view, ServicePost):  # as staff see it: no viewer's skills or claims
            view = PostView(post=view, matched_skills=[], held_by_me=False)
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
            opening_hours=views.opening_hours(post),
            matched_skills=view.matched_skills,
            suggested=view.suggested,
            held_by_me=view.held_by_me,
        )


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None = None

    @classmethod
    def of(cls, posts: list[PostView], next_cursor: str | None) -> PostPage:
        return cls(items=[PostOut.of(v) for v in posts], next_cursor=next_cursor)


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

    @classmethod
    def of(cls, assignment: PostAssignment) -> AssignmentOut:
        return cls.model_validate(assignment)


class AssignmentList(BaseModel):
    items: list[AssignmentOut]

    @classmethod
    def of(cls, assignments: list[PostAssignment]) -> AssignmentList:
        return cls(items=[AssignmentOut.of(a) for a in assignments])


class AssignIn(PartyIn):
    user_id: Id


class RemoveIn(PartyIn):
    reason: Annotated[Text, Field(max_length=200, title="调整原因")] = ""


class CheckinCodeOut(BaseModel):
    code: str = Field(description="6 位签到码，每 30 秒更新")
    expires_at: datetime
    url: str = Field(description="二维码中的签到链接")

    @classmethod
    def of(cls, code: CheckinCode) -> CheckinCodeOut:
        return cls(code=code.code, expires_at=code.expires_at, url=code.url)


class CodeIn(PartyIn):
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

    @classmethod
    def of(cls, record: ServiceRecord) -> RecordOut:
        return cls.model_validate(record)


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

    @classmethod
    def of(cls, page: Page[ServiceRecord]) -> RecordPage:
        return cls(items=[RecordOut.of(r) for r in page.items], next_cursor=page.next_cursor)


class MemberServiceRecordsOut(BaseModel):
    total_minutes: int
    total_hours: float
    term_minutes: int = Field(description="本年度计入的服务分钟数")
    term_hours: float
    open_record: RecordOut | None = Field(description="尚未签退的签到")
    items: list[RecordOut]
    next_cursor: str | None = None

    @classmethod
    def of(cls, mine: MyService) -> MemberServiceRecordsOut:
        return cls(
            total_minutes=mine.total_minutes,
            total_hours=views.hours(mine.total_minutes),
            term_minutes=mine.term_minutes,
            term_hours=views.hours(mine.term_minutes),
            open_record=RecordOut.of(mine.open_record) if mine.open_record else None,
            items=[RecordOut.of(r) for r in mine.page.items],
            next_cursor=mine.page.next_cursor,
        )


class OfflineRecordIn(PartyIn):
    user_id: Id = Field(title="党员")
    community_id: OrgId = Field(title="社区")
    post_id: Id | None = Field(default=None, title="岗位")
    task: Annotated[
        Text, Field(max_length=64, title="服务事项", description="未关联岗位时填写服务事项")
    ] = ""
    started_at: AwareDatetime = Field(title="开始时间")
    ended_at: AwareDatetime = Field(title="结束时间")
    note: Annotated[Text, Field(max_length=200, title="备注")] = ""


class CorrectionIn(PartyIn):
    started_at: AwareDatetime = Field(title="开始时间")
    ended_at: AwareDatetime = Field(title="结束时间")
    reason: Annotated[Text, Field(min_length=1, max_length=200, title="更正原因")]


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

    @classmethod
    def of(cls, group_by: str, start: date, end: date, rows: list[HoursRow]) -> HoursOut:
        return cls(
            group_by=group_by,
            start_date=start,
            end_date=end,
            items=[HoursRowOut.model_validate(r) for r in rows],
        )


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

    @classmethod
    def of(cls, report: PartyReport) -> ReportOut:
        return cls.model_validate(report)
