"""导出我的数据: everything held about the person, and nothing about anyone else."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook

from backend.accounts import service as accounts_service
from backend.core.models import OutboxMessage
from backend.privacy import service as privacy_service
from tests.privacy.scenario import (
    ADDRESS,
    NAME,
    NEIGHBOUR,
    NEIGHBOUR_PHONE,
    PHONE,
    build_world,
    xlsx_text,
)

OTHERS = (NEIGHBOUR, NEIGHBOUR_PHONE, NEIGHBOUR_PHONE[-4:], "邻居志愿服务", "陈社工")


async def _export(client: httpx.AsyncClient, user, fmt: str) -> httpx.Response:
    token = accounts_service.issue_access_token(user_id=user.id)
    return await client.get(
        "/api/v1/me/export",
        params={"format": fmt},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_json_export_holds_the_persons_data_only(client: httpx.AsyncClient):
    world = await build_world()
    await OutboxMessage.create(
        channel="user",
        template_key="notice",
        user_id=world.neighbour.id,
        context={"title": "给邻居的消息", "body": "只给李师傅"},
        dedupe_key="neighbour-only",
        available_at=world.class_full.created_at,
    )

    response = await _export(client, world.person, "json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert set(data) == {"generated_at"} | {s.key for s in privacy_service.SECTIONS}
    (profile,) = data["profile"]
    assert profile["phone"] == PHONE  # the owner sees the full number
    assert profile["community"] == "大田社区"
    (registration,) = data["party_registrations"]
    assert (registration["name"], registration["address"]) == (NAME, ADDRESS)
    assert registration["party_org_phone"] == "13700002222"
    assert [r["minutes"] for r in data["service_records"]] == [world.service_minutes]
    assert {b["activity"] for b in data["bookings"]} == {"舞韵瑜伽", "茶文化"}
    assert [w["address"] for w in data["wishes_posted"]] == [ADDRESS]
    assert [w["title"] for w in data["wishes_claimed"]] == ["想要一副老花镜"]
    # Report-in approval and the service record pay by rule before the award and the spend.
    assert [e["delta"] for e in data["points_ledger"]][-2:] == [40, -10]
    assert data["points_ledger"][-1]["balance_after"] == profile["points_balance"]
    assert [r["reward"] for r in data["redemptions"]] == ["环保袋"]
    assert data["subscriptions"] == [
        {
            "template_key": "booking",
            "remaining": 2,
            "updated_at": data["subscriptions"][0]["updated_at"],
        }
    ]
    assert data["messages"], "booking and wish messages to the person are listed"
    assert all(m["title"] != "给邻居的消息" for m in data["messages"])
    text = response.text
    for other in OTHERS:
        assert other not in text, other


async def test_xlsx_export_has_one_sheet_per_section(client: httpx.AsyncClient):
    world = await build_world()

    response = await _export(client, world.person, "xlsx")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [s.title for s in privacy_service.SECTIONS]
    profile = list(book["个人资料"].iter_rows(values_only=True))
    assert profile[0][:3] == ("用户编号", "昵称", "手机号")
    assert profile[1][2] == PHONE
    bookings = list(book["活动报名"].iter_rows(values_only=True))
    assert len(bookings) == 3 and all(row[1] is not None for row in bookings[1:])
    text = xlsx_text(response.content)
    assert NAME in text and ADDRESS in text
    for other in OTHERS:
        assert other not in text, other


async def test_the_neighbours_export_does_not_hold_the_persons_data(client: httpx.AsyncClient):
    world = await build_world()

    data = (await _export(client, world.neighbour, "json")).text

    for personal in (NAME, PHONE, "13700002222"):
        assert personal not in data


async def test_export_needs_login_and_a_known_format(client: httpx.AsyncClient):
    world = await build_world()
    assert (await client.get("/api/v1/me/export")).status_code == 401
    bad = await _export(client, world.person, "csv")
    assert bad.status_code == 422
