"""Request and response bodies of the notices API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from backend.core.ids import MAX_ID, MAX_ORG_ID
from backend.core.pagination import Page
from backend.core.text import CONTROL_MESSAGE, InModel, has_forbidden
from backend.notices.models import AUDIENCES, MAX_CONSENTS_PER_CALL, Notice
from backend.notices.views import DeliveryCounts, NoticePreview, describe_reason, notice_status

TemplateKey = Literal["notice", "booking", "reminder", "wish", "reward"]


class SubscriptionIn(InModel):
    """Consents the user just gave in the mini-program (wx.requestSubscribeMessage)."""

    template_key: TemplateKey = Field(
        description=(
            "notice 公告、booking 报名结果、reminder 活动提醒、wish 心愿进展、reward 兑换提醒"
        )
    )
    accepted: int = Field(
        ge=1, le=MAX_CONSENTS_PER_CALL, description="本次同意接收的次数（每次同意可发一条消息）"
    )


class SubscriptionOut(BaseModel):
    template_key: TemplateKey
    remaining: int = Field(description="还可以发送的订阅消息条数")

    @classmethod
    def of(cls, template_key: str, remaining: int) -> SubscriptionOut:
        return cls(template_key=template_key, remaining=remaining)


Audience = Literal[AUDIENCES]  # type: ignore[valid-type]
OrgId = Annotated[int, Field(ge=1, le=MAX_ORG_ID)]
# The notice columns' lengths; the group robot and WeChat cut further when they send.
TITLE_MAX = 64
BODY_MAX = 5000
LINK_MAX = 255
MAX_TARGETS = 100


# Stripped, so a title of spaces is as short as it looks; the limits in `Field`, where the
# H5 form reads its boxes' maxlength (h5.forms.max_length).
_Stripped = StringConstraints(strip_whitespace=True)
Title = Annotated[str, _Stripped, Field(min_length=1, max_length=TITLE_MAX)]
Body = Annotated[str, _Stripped, Field(min_length=1, max_length=BODY_MAX)]
Link = Annotated[str, _Stripped, Field(max_length=LINK_MAX)]


class NoticeIn(InModel):
    """A notice staff write (POST /notices and POST /notices/preview)."""

    community_id: OrgId | None = Field(
        default=None, title="发布社区", description="发布社区；不填为全街道通知（仅街道管理员）"
    )
    street_id: OrgId | None = Field(
        default=None, title="街道", description="全街道通知的街道（只有一个街道时可不填）"
    )
    title: Title = Field(title="标题", description="标题")
    body: Body = Field(title="正文", description="正文")
    audience: Audience = Field(
        default="all",
        title="对象",
        description=(
            "all 全体、residents 居民、party_members 在职党员、workers 楼宇白领、"
            "unit_members 驻区单位成员"
        ),
    )
    building_ids: list[OrgId] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        title="楼宇",
        description="只发给这些楼宇的白领（workers）",
    )
    unit_ids: list[OrgId] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        title="驻区单位",
        description="只发给这些驻区单位的成员（unit_members）",
    )
    activity_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, title="活动", description="只发给报名了该活动的人"
    )
    link: Link = Field(
        default="", title="相关链接", description="相关页面：/h5/ 开头的路径或 https 网址"
    )
    publish_at: datetime | None = Field(
        default=None, title="发布时间", description="定时发布时间；不填或已过去则立即发布"
    )

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # The title is one line in WeChat's message and the robot's heading.
        if has_forbidden(value, multiline=False):
            raise PydanticCustomError("text_control", CONTROL_MESSAGE)
        return value


class NoticeDetailOut(BaseModel):
    id: int
    community_id: int | None = Field(description="发布社区；null 为全街道通知")
    publisher: str = Field(description="发布方：社区或街道名称")
    title: str
    body: str
    link: str
    audience: Audience
    building_ids: list[int]
    unit_ids: list[int]
    activity_id: int | None
    status: Literal["scheduled", "published", "cancelled"]
    publish_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, notice: Notice) -> NoticeDetailOut:
        return cls(
            id=notice.id,
            community_id=notice.community_id,
            publisher=notice.community.name if notice.community else notice.street.name,
            title=notice.title,
            body=notice.body,
            link=notice.link,
            audience=notice.audience,
            building_ids=notice.building_ids or [],
            unit_ids=notice.unit_ids or [],
            activity_id=notice.activity_id,
            status=notice_status(notice),
            publish_at=notice.publish_at,
            created_at=notice.created_at,
        )


class NoticePage(BaseModel):
    items: list[NoticeDetailOut]
    next_cursor: str | None = None

    @classmethod
    def of(cls, page: Page[Notice]) -> NoticePage:
        return cls(items=[NoticeDetailOut.of(n) for n in page.items], next_cursor=page.next_cursor)


class PreviewOut(BaseModel):
    """What recipients would get: the WeChat message fields, the robot's markdown, and how many."""

    fields: dict[str, str] = Field(description="订阅消息 / 模板消息的字段（已按微信长度限制截断）")
    page: str | None = Field(description="小程序跳转页面")
    url: str | None = Field(description="模板消息跳转的 H5 路径")
    markdown: str = Field(description="企业微信群机器人收到的 markdown")
    recipients: int = Field(description="按当前数据会收到的人数")
    robot: bool = Field(description="社区企业微信群机器人是否会收到")
    publisher: str
    publish_at: datetime

    @classmethod
    def of(cls, preview: NoticePreview) -> PreviewOut:
        return cls(
            fields=preview.fields,
            page=preview.page,
            url=preview.url,
            markdown=preview.markdown,
            recipients=preview.recipients,
            robot=preview.robot,
            publisher=preview.publisher,
            publish_at=preview.publish_at,
        )


class FailureReason(BaseModel):
    reason: str = Field(description="微信错误码或 render、attempts 等")
    label: str
    count: int


class DeliveryOut(BaseModel):
    """Per-notice delivery counts for staff."""

    notice_id: int
    recipients: int = Field(description="已生成消息的收件人数")
    fanout_done: bool = Field(description="是否已为全部收件人生成消息")
    sent: int
    pending: int = Field(description="等待发送或重试中")
    skipped: int = Field(description="没有可用的微信渠道，仅站内可见")
    failed: int
    failed_by_reason: list[FailureReason]
    robot: dict[str, int] = Field(description="企业微信群机器人：sent / pending / failed")

    @classmethod
    def of(cls, notice_id: int, counts: DeliveryCounts) -> DeliveryOut:
        return cls(
            notice_id=notice_id,
            recipients=counts.recipients,
            fanout_done=counts.fanout_done,
            sent=counts.sent,
            pending=counts.pending,
            skipped=counts.skipped,
            failed=counts.failed,
            failed_by_reason=[
                FailureReason(reason=reason, label=describe_reason(reason), count=n)
                for reason, n in counts.failed_by_reason.items()
            ],
            robot=counts.robot,
        )
