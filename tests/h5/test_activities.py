"""活动报名 pages over HTTP: booking states, Chinese errors, staff form, attendance, QR, export."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO

import httpx
from openpyxl import load_workbook

from backend.activities import bookings, catalogue
from backend.activities.exceptions import SoldOut
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from tests.factories import Neighbourhood, make_staff, make_user, session_cookies
from tests.factories.activities import freeze, make_activity
from tests.h5.conftest import csrf_token


async def as_user(client: httpx.AsyncClient, user) -> None:
    client.cookies.clear()
    client.cookies.update(session_cookies(user))


async def post_form(client: httpx.AsyncClient, page: str, action: str, **data):
    """Post a form as the browser would after loading `page` (a full class has no form:
    the session's token from the home page does the same)."""
    html = (await client.get(page)).text
    token = csrf_token(html if "csrf_token" in html else (await client.get("/h5/")).text)
    return await client.post(action, data={"csrf_token": token, **data})


async def test_book_the_last_seat_then_waitlist_then_full(
    client: httpx.AsyncClient, demo: Neighbourhood
):
    freeze()
    activity = await make_activity(demo.community, capacity=1, waitlist_capacity=1)
    second = await make_user(community=demo.community, nickname="李阿姨")
    third = await make_user(community=demo.community, nickname="赵叔叔")
    page = f"/h5/activities/{activity.id}"

    await as_user(client, demo.resident)
    listing = await client.get("/h5/activities")
    assert "舞韵瑜伽" in listing.text and "剩余 1/1" in listing.text
    detail = await client.get(page)
    assert "立即报名" in detail.text
    booked = await post_form(client, page, f"{page}/book")
    assert booked.status_code == 303 and booked.headers["location"] == f"{page}?done=confirmed"
    shown = await client.get(booked.headers["location"])
    assert "已报名" in shown.text and "取消报名" in shown.text

    await as_user(client, second)
    assert "加入候补" in (await client.get(page)).text
    await post_form(client, page, f"{page}/book")
    assert "候补第 1 位" in (await client.get(page)).text

    await as_user(client, third)
    detail = await client.get(page)
    assert re.search(r"disabled>\s*已满", detail.text)
    refused = await post_form(client, page, f"{page}/book")
    assert refused.status_code == 409
    assert SoldOut.message in refused.text

    mine = await client.get("/h5/activities/mine")
    assert "还没有报名任何活动" in mine.text


async def test_cancel_on_the_page_promotes_the_waitlist(
    client: httpx.AsyncClient, demo: Neighbourhood
):
    freeze()
    activity = await make_activity(demo.community, capacity=1, waitlist_capacity=1)
    waiting = await make_user(community=demo.community)
    seat = await bookings.book_activity(user_id=demo.resident.id, activity_id=activity.id)
    await bookings.book_activity(user_id=waiting.id, activity_id=activity.id)
    page = f"/h5/activities/{activity.id}"

    await as_user(client, demo.resident)
    cancelled = await post_form(client, page, f"/h5/bookings/{seat.booking.id}/cancel")
    assert cancelled.headers["location"] == f"{page}?done=cancelled"
    assert "已取消报名" in (await client.get(cancelled.headers["location"])).text
    await as_user(client, waiting)
    assert "已报名" in (await client.get(page)).text
    mine = await client.get("/h5/activities/mine")
    assert "舞韵瑜伽" in mine.text and "已报名" in mine.text


async def test_refusals_are_chinese_pages(client: httpx.AsyncClient, demo: Neighbourhood):
    freeze()
    activity = await make_activity(demo.other_community, capacity=3)
    page = f"/h5/activities/{activity.id}"
    await as_user(client, demo.resident)
    refused = await post_form(client, page, f"{page}/book")
    assert refused.status_code == 403 and "不符合报名条件" in refused.text
    missing = await client.get("/h5/activities/424242")
    assert missing.status_code == 404 and "活动不存在" in missing.text
    staff_only = await client.get(f"{page}/attendance")
    assert staff_only.status_code == 403


async def test_staff_publish_edit_and_cancel_through_the_form(
    client: httpx.AsyncClient, demo: Neighbourhood
):
    freeze()
    staff = await make_staff(demo.community)
    await as_user(client, staff)
    form = await client.get("/h5/activities/new")
    assert form.status_code == 200 and "大田社区" in form.text
    fields = {
        "community_id": str(demo.community.id),
        "title": "茶文化",
        "category": "午间一小时",
        "location": "中凯大厦 2 楼",
        "description": "品茶与茶艺",
        "starts_at": "2025-06-20T12:00",
        "ends_at": "2025-06-20T13:00",
        "booking_opens_at": "2025-06-11T12:00",
        "booking_closes_at": "2025-06-19T12:00",
        "cancel_deadline": "2025-06-21T18:00",
        "capacity": "20",
        "waitlist_capacity": "5",
        "points": "5",
        "mode": "first_come",
        "audience": "worker",
        "building_ids": str(demo.building.id),
    }
    bad = await post_form(client, "/h5/activities/new", "/h5/activities/new", **fields)
    assert bad.status_code == 422 and "取消截止须不晚于活动开始" in bad.text
    assert 'value="茶文化"' in bad.text  # the form keeps what was typed

    fields["cancel_deadline"] = "2025-06-19T10:00"
    created = await post_form(client, "/h5/activities/new", "/h5/activities/new", **fields)
    assert created.status_code == 303, created.text
    activity = await Activity.get(title="茶文化")
    assert activity.starts_at.hour == 4  # 12:00 in Shanghai is 04:00 UTC
    view = await catalogue.get_activity(activity_id=activity.id)
    assert view.audience == ["worker"] and view.building_ids == [demo.building.id]

    edit = f"/h5/activities/{activity.id}/edit"
    assert 'value="2025-06-20T12:00"' in (await client.get(edit)).text
    saved = await post_form(client, edit, edit, **(fields | {"capacity": "25"}))
    assert saved.headers["location"].endswith("?done=saved")
    assert (await Activity.get(id=activity.id)).capacity == 25

    detail = f"/h5/activities/{activity.id}"
    gone = await post_form(client, detail, f"{detail}/cancel", reason="暴雨预警")
    assert gone.headers["location"].endswith("?done=activity_cancelled")
    assert "暴雨预警" in (await client.get(detail)).text


async def test_attendance_qr_check_in_and_export(client: httpx.AsyncClient, demo: Neighbourhood):
    freeze()
    activity = await make_activity(demo.community, capacity=3, points=5)
    staff = await Activity.get(id=activity.id).prefetch_related("created_by")
    staff = staff.created_by
    absent = await make_user(community=demo.community, nickname="缺席者")
    await bookings.book_activity(user_id=demo.resident.id, activity_id=activity.id)
    await bookings.book_activity(user_id=absent.id, activity_id=activity.id)
    clock.set(activity.starts_at - timedelta(minutes=5))

    await as_user(client, staff)
    qr = await client.get(f"/h5/activities/{activity.id}/qr")
    assert qr.status_code == 200 and "<svg" in qr.text
    assert 1 <= int(qr.headers["refresh"]) <= 30
    code = re.search(r'id="code">(\d{6})<', qr.text).group(1)

    await as_user(client, demo.resident)
    checkin_page = f"/h5/activities/{activity.id}/checkin?code={code}"
    assert f'value="{code}"' in (await client.get(checkin_page)).text
    wrong = await post_form(
        client, checkin_page, f"/h5/activities/{activity.id}/checkin", code="000000"
    )
    if code != "000000":
        assert wrong.status_code == 409 and "签到码不正确" in wrong.text
    done = await post_form(client, checkin_page, f"/h5/activities/{activity.id}/checkin", code=code)
    assert "签到成功" in done.text and "获得 5 积分" in done.text

    await as_user(client, staff)
    attendance = f"/h5/activities/{activity.id}/attendance"
    listing = await client.get(attendance)
    assert "王阿姨" in listing.text and "已签到" in listing.text and "缺席者" in listing.text
    absent_booking = await Booking.get(user_id=absent.id, activity_id=activity.id)
    marked = await post_form(
        client, attendance, f"/h5/bookings/{absent_booking.id}/attendance", status="no_show"
    )
    assert marked.headers["location"] == f"{attendance}?done=marked"
    assert "未到场" in (await client.get(attendance)).text
    excused = await post_form(client, attendance, f"/h5/bookings/{absent_booking.id}/excuse")
    assert excused.status_code == 303
    assert "已免责" in (await client.get(attendance)).text

    export = await client.get(f"/h5/activities/{activity.id}/export.xlsx")
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(BytesIO(export.content)).active.iter_rows(values_only=True))
    assert [r[3] for r in rows[2:]] == ["已签到", "未到场"]
