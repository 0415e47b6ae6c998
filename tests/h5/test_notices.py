"""通知公告 pages: anyone reads published notices; staff compose, preview, publish, schedule,
cancel and follow the delivery of a notice."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise.expressions import Q

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.models import OutboxMessage
from backend.notices.models import Notice
from tests.factories import Neighbourhood, make_staff, make_street_admin
from tests.factories.notices import publish_notice
from tests.h5.conftest import csrf_token, login_as

TITLE = "关于本小区二次供水设施清洗期间临时停水的通知"


@pytest.fixture
async def staff(demo: Neighbourhood) -> User:
    return await make_staff(demo.community, nickname="陈社工", persona="staff")


async def publish(staff: User, community_id: int | None, title: str, **fields) -> Notice:
    return await publish_notice(
        actor=staff, community_id=community_id, title=title, body=f"{title}的正文", **fields
    )


async def test_anyone_reads_published_notices(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    shown = await publish(staff, demo.community.id, "停水通知")
    await publish(staff, demo.community.id, "定时通知", publish_at=clock.now() + timedelta(hours=3))

    page = await client.get("/h5/notices")
    assert page.status_code == 200
    assert "停水通知" in page.text and "大田社区" in page.text
    assert "定时通知" not in page.text
    assert "写通知" not in page.text

    detail = await client.get(f"/h5/notices/{shown.id}")
    assert detail.status_code == 200 and "停水通知的正文" in detail.text
    assert "发送情况" not in detail.text


async def test_a_resident_sees_their_community_and_the_street(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    admin = await make_street_admin(nickname="周主任")
    await publish(staff, demo.community.id, "大田停水")
    await publish(admin, None, "全街道防汛")
    await publish(admin, demo.other_community.id, "新闸停电")

    await login_as(client, "resident")
    page = await client.get("/h5/notices")
    assert "大田停水" in page.text and "全街道防汛" in page.text
    assert "新闸停电" not in page.text


async def test_unknown_or_unpublished_notice_is_a_chinese_404(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    tomorrow = clock.now() + timedelta(days=1)
    later = await publish(staff, demo.community.id, "定时", publish_at=tomorrow)
    for path in (f"/h5/notices/{later.id}", "/h5/notices/999999", "/h5/notices/abc"):
        response = await client.get(path)
        assert response.status_code in (404, 422), path
        assert "<html" in response.text


async def test_staff_compose_preview_and_publish(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    demo.community.wecom_robot_key = "robot"
    await demo.community.save()
    await login_as(client, "staff")
    form = await client.get("/h5/notices/new")
    assert form.status_code == 200 and "大田社区" in form.text and "中凯大厦" in form.text
    draft = {
        "csrf_token": csrf_token(form.text),
        "title": TITLE,
        "body": "3 月 5 日 9:00–15:00 停水。\n请提前储水。",
        "community_id": str(demo.community.id),
        "audience": "all",
        "link": "",
        "publish_at": "",
    }

    preview = await client.post("/h5/notices/preview", data=draft)

    assert preview.status_code == 200, preview.text
    assert TITLE[:19] + "…" in preview.text  # cut to WeChat's 20 characters
    # Everyone who lives there, works in its buildings or belongs to its units (this staff
    # member included).
    reached = await User.filter(
        Q(community_id=demo.community.id)
        | Q(building__community_id=demo.community.id)
        | Q(unit__community_id=demo.community.id)
    ).count()
    assert f"{reached} 人" in preview.text
    assert "企业微信群机器人" in preview.text and "请提前储水。" in preview.text
    assert await Notice.all().count() == 0

    published = await client.post(
        "/h5/notices", data={**draft, "csrf_token": csrf_token(preview.text)}
    )
    assert published.status_code == 303
    notice = await Notice.get()
    assert published.headers["location"] == f"/h5/notices/{notice.id}?done=published"
    detail = await client.get(published.headers["location"])
    assert "通知已发布" in detail.text and "发送情况" in detail.text
    assert await OutboxMessage.all().count() == 0  # the bot fans it out, not the page


async def test_back_from_the_preview_keeps_the_draft(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    await login_as(client, "staff")
    form = await client.get("/h5/notices/new")
    draft = {
        "csrf_token": csrf_token(form.text),
        "title": "楼宇白领午间课程通知",
        "body": "本周四午间一小时。",
        "community_id": str(demo.community.id),
        "audience": "workers",
        "building_ids": [str(demo.building.id)],
        "back": "1",
    }
    back = await client.post("/h5/notices", data=draft)
    assert back.status_code == 200
    assert 'value="楼宇白领午间课程通知"' in back.text
    assert f'value="{demo.building.id}" id="b{demo.building.id}" checked' in back.text
    assert await Notice.all().count() == 0


async def test_a_bad_draft_comes_back_with_the_reason(
    client: httpx.AsyncClient, demo: Neighbourhood, staff
):
    await login_as(client, "staff")
    form = await client.get("/h5/notices/new")
    draft = {
        "csrf_token": csrf_token(form.text),
        "title": "通知",
        "body": "内容",
        "community_id": str(demo.community.id),
        "audience": "residents",
        "building_ids": [str(demo.building.id)],
        "link": "javascript:alert(1)",
    }
    response = await client.post("/h5/notices/preview", data=draft)
    assert response.status_code == 422
    assert "只有发给楼宇白领时才能选择楼宇" in response.text
    assert "/h5/ 开头" in response.text
    assert 'value="通知"' in response.text


async def test_schedule_then_cancel(client: httpx.AsyncClient, demo: Neighbourhood, staff):
    await login_as(client, "staff")
    form = await client.get("/h5/notices/new")
    later = (clock.now() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai"))
    data = {
        "csrf_token": csrf_token(form.text),
        "title": "防汛演练",
        "body": "周六上午演练。",
        "community_id": str(demo.community.id),
        "audience": "all",
        "publish_at": later.strftime("%Y-%m-%dT%H:%M"),
    }
    created = await client.post("/h5/notices", data=data)
    assert created.status_code == 303 and created.headers["location"].endswith("done=scheduled")
    notice = await Notice.get()
    assert notice.status == "scheduled"
    manage = await client.get("/h5/notices/manage")
    assert "防汛演练" in manage.text and "待发布" in manage.text

    detail = await client.get(f"/h5/notices/{notice.id}")
    assert "取消这条定时通知" in detail.text
    cancelled = await client.post(
        f"/h5/notices/{notice.id}/cancel", data={"csrf_token": csrf_token(detail.text)}
    )
    assert cancelled.status_code == 303
    assert (await Notice.get(id=notice.id)).status == "cancelled"
    again = await client.post(
        f"/h5/notices/{notice.id}/cancel", data={"csrf_token": csrf_token(detail.text)}
    )
    assert again.status_code == 409 and "不能再取消" in again.text


async def test_residents_cannot_compose(client: httpx.AsyncClient, demo: Neighbourhood, staff):
    await login_as(client, "resident")
    form = await client.get("/h5/notices/new")
    assert form.status_code == 403
    home = await client.get("/h5/")
    data = {
        "csrf_token": csrf_token(home.text),
        "title": "冒充",
        "body": "内容",
        "community_id": str(demo.community.id),
    }
    assert (await client.post("/h5/notices", data=data)).status_code == 403
    assert await Notice.all().count() == 0
