"""积分 pages over HTTP: my points, shop → confirm → pickup code, staff 核销, rewards,
adjustments, rules, leaderboard and the Excel export."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from openpyxl import load_workbook

from backend.accounts.models import User
from backend.core.clock import clock
from backend.orgs.models import Community
from backend.points import ledger, rewards
from backend.points.models import Redemption, Reward, RewardPicture
from tests.factories import (
    make_community,
    make_staff,
    make_street_admin,
    make_user,
    session_cookies,
)
from tests.factories.points import make_reward
from tests.h5.conftest import csrf_token


@dataclass
class Shop:
    community: Community
    staff: User
    resident: User
    admin: User
    bag: Reward


@pytest.fixture
async def shop(db) -> Shop:
    community = await make_community(name="大田社区")
    staff = await make_staff(community, nickname="陈社工")
    resident = await make_user(nickname="王阿姨", community=community, phone="13800000001")
    admin = await make_street_admin(nickname="周主任")
    await ledger.award(
        user_id=resident.id, amount=120, source_type="activity", source_id="a1", reason="参加读书会"
    )
    bag = await make_reward(
        actor=staff,
        community_id=community.id,
        title="环保购物袋",
        cost=50,
        stock=3,
        pickup_place="居委会一楼",
    )
    return Shop(community, staff, resident, admin, bag)


def as_user(client: httpx.AsyncClient, user: User) -> httpx.AsyncClient:
    client.cookies.clear()
    client.cookies.update(session_cookies(user))
    return client


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict, files: dict | None = None
) -> httpx.Response:
    """Post a form as the browser does: with files it is multipart, the token a field."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": csrf_token(html), **data}, files=files)


async def test_my_points_shows_balance_expiry_and_history(client, shop):
    page = await as_user(client, shop.resident).get("/h5/points")
    assert page.status_code == 200
    assert "可用积分" in page.text and ">120<" in page.text
    assert "有效期至" in page.text
    assert "参加读书会" in page.text and "+120" in page.text
    assert "/h5/static/points.css" in page.text


async def test_a_resident_redeems_with_confirmation_and_sees_the_code(client, shop):
    as_user(client, shop.resident)
    shop_page = await client.get("/h5/points/rewards")
    assert "环保购物袋" in shop_page.text and "50 积分" in shop_page.text
    detail = await client.get(f"/h5/points/rewards/{shop.bag.id}")
    assert "立即兑换" in detail.text
    confirm = await client.get(f"/h5/points/rewards/{shop.bag.id}/redeem")
    assert "确认兑换" in confirm.text and "剩余 70 分" in confirm.text
    key = re.search(r'name="request_key" value="([^"]+)"', confirm.text).group(1)
    form = {"csrf_token": csrf_token(confirm.text), "request_key": key}

    first = await client.post(f"/h5/points/rewards/{shop.bag.id}/redeem", data=form)
    resent = await client.post(f"/h5/points/rewards/{shop.bag.id}/redeem", data=form)

    assert first.status_code == resent.status_code == 303
    assert first.headers["location"] == resent.headers["location"]
    assert await Redemption.all().count() == 1
    code_page = await client.get(first.headers["location"])
    redemption = await Redemption.get()
    assert redemption.pickup_code in code_page.text
    assert "兑换成功" in code_page.text
    assert "<svg" in code_page.text
    assert (await User.get(id=shop.resident.id)).points_balance == 70
    listing = await client.get("/h5/points/redemptions")
    assert redemption.pickup_code in listing.text and "待领取" in listing.text


async def test_refusals_show_a_chinese_message(client, shop):
    poor = await make_user(community=shop.community)
    as_user(client, poor)
    detail = await client.get(f"/h5/points/rewards/{shop.bag.id}")
    assert "积分不足" in detail.text
    confirm = await client.get(f"/h5/points/rewards/{shop.bag.id}/redeem")
    refused = await client.post(
        f"/h5/points/rewards/{shop.bag.id}/redeem",
        data={"csrf_token": csrf_token(confirm.text), "request_key": "k1"},
    )
    assert refused.status_code == 409
    assert "积分不足" in refused.text


async def test_staff_verify_a_code_once(client, shop):
    redemption = await rewards.redeem_reward(user=shop.resident, reward_id=shop.bag.id)
    as_user(client, shop.staff)
    preview = await client.get("/h5/points/staff/verify", params={"code": redemption.pickup_code})
    assert "环保购物袋" in preview.text and "王**" in preview.text and "确认核销" in preview.text

    done = await client.post(
        "/h5/points/staff/verify",
        data={"csrf_token": csrf_token(preview.text), "pickup_code": redemption.pickup_code},
    )
    again = await client.post(
        "/h5/points/staff/verify",
        data={"csrf_token": csrf_token(preview.text), "pickup_code": redemption.pickup_code},
    )

    assert done.status_code == 200 and "核销成功" in done.text
    assert again.status_code == 409 and "已核销" in again.text
    assert (await Redemption.get(id=redemption.id)).status == "fulfilled"


async def test_a_resident_cannot_open_the_verify_preview(client, shop):
    redemption = await rewards.redeem_reward(user=shop.resident, reward_id=shop.bag.id)
    page = await as_user(client, shop.resident).get(
        "/h5/points/staff/verify", params={"code": redemption.pickup_code}
    )
    assert page.status_code == 403
    assert "确认核销" not in page.text


async def test_staff_cancel_a_redemption(client, shop):
    redemption = await rewards.redeem_reward(user=shop.resident, reward_id=shop.bag.id)
    as_user(client, shop.staff)
    # From the staff's list, which shows no pickup codes, to the redemption's own page.
    response = await post_form(
        client,
        f"/h5/points/staff/redemptions/{redemption.id}",
        f"/h5/points/staff/redemptions/{redemption.id}/cancel",
        {"reason": "礼品缺货"},
    )
    assert response.status_code == 200 and "已取消兑换" in response.text
    assert (await User.get(id=shop.resident.id)).points_balance == 120
    listing = await client.get("/h5/points/staff/redemptions", params={"status": "cancelled"})
    assert f"/h5/points/staff/redemptions/{redemption.id}" in listing.text
    assert redemption.pickup_code not in listing.text


async def test_staff_put_up_edit_and_restock_a_reward(client, shop):
    as_user(client, shop.staff)
    created = await post_form(
        client,
        "/h5/points/staff/rewards/new",
        "/h5/points/staff/rewards",
        {
            "community_id": str(shop.community.id),
            "title": "理发券",
            "cost": "80",
            "stock": "10",
            "per_user_limit": "1",
            "pickup_days": "7",
            "on_sale_from": "2030-01-01T09:00",
        },
    )
    assert created.status_code == 303, created.text
    reward = await Reward.get(title="理发券")
    assert reward.on_sale_from is not None
    edit_url = f"/h5/points/staff/rewards/{reward.id}"
    saved = await post_form(
        client,
        edit_url,
        edit_url,
        {
            "title": "理发券（男女通用）",
            "cost": "90",
            "per_user_limit": "1",
            "pickup_days": "7",
            "active": "1",
        },
    )
    assert saved.status_code == 303
    restocked = await post_form(client, edit_url, f"{edit_url}/stock", {"delta": "-4"})
    assert restocked.status_code == 303
    reward = await Reward.get(id=reward.id)
    assert (reward.title, reward.cost, reward.stock, reward.on_sale_from) == (
        "理发券（男女通用）",
        90,
        6,
        None,
    )
    listing = await client.get("/h5/points/staff/rewards")
    assert "理发券（男女通用）" in listing.text


async def test_a_bad_reward_form_is_shown_again_with_reasons(client, shop):
    as_user(client, shop.staff)
    response = await post_form(
        client,
        "/h5/points/staff/rewards/new",
        "/h5/points/staff/rewards",
        {"community_id": str(shop.community.id), "title": "抽纸", "cost": "abc", "stock": "5"},
    )
    assert response.status_code == 422
    assert "请填写整数" in response.text
    assert 'value="抽纸"' in response.text


async def test_staff_adjust_by_phone_number(client, shop):
    as_user(client, shop.staff)
    response = await post_form(
        client,
        "/h5/points/staff/adjust",
        "/h5/points/staff/adjust",
        {
            "community_id": str(shop.community.id),
            "who": "138 0000 0001",
            "delta": "15",
            "reason": "线下志愿服务补录",
        },
    )
    assert response.status_code == 303
    assert (await User.get(id=shop.resident.id)).points_balance == 135
    page = await client.get(response.headers["location"])
    assert "线下志愿服务补录" in page.text and "积分已调整" in page.text

    refused = await post_form(
        client,
        "/h5/points/staff/adjust",
        "/h5/points/staff/adjust",
        {
            "community_id": str(shop.community.id),
            "who": "13900000000",
            "delta": "5",
            "reason": "补录",
        },
    )
    assert refused.status_code == 404 and "没有找到这位居民" in refused.text


async def test_staff_of_another_community_are_refused(client, shop):
    outsider = await make_staff(await make_community())
    page = await as_user(client, outsider).get(
        "/h5/points/staff/rewards", params={"community_id": shop.community.id}
    )
    assert page.status_code == 403


async def test_street_admin_adds_and_withdraws_a_rule(client, shop):
    as_user(client, shop.admin)
    added = await post_form(
        client,
        "/h5/points/staff/rules",
        "/h5/points/staff/rules",
        {
            "event_type": "service_hour",
            "points": "8",
            "multiplier": "1.5",
            "daily_cap": "40",
            "monthly_cap": "",
            "effective_date": "2099-07-01",
            "note": "七一",
        },
    )
    assert added.status_code == 303, added.text
    rules_page = await client.get("/h5/points/staff/rules")
    assert "2099年07月01日起" in rules_page.text and "× 1.5 倍" in rules_page.text
    rule_id = re.search(r"/h5/points/staff/rules/(\d+)/withdraw", rules_page.text).group(1)
    withdrawn = await post_form(
        client, "/h5/points/staff/rules", f"/h5/points/staff/rules/{rule_id}/withdraw", {}
    )
    assert withdrawn.status_code == 303
    public = await as_user(client, shop.resident).get("/h5/points/rules")
    assert "志愿服务" in public.text and "每小时 10 分" in public.text
    staff_try = await as_user(client, shop.staff).get("/h5/points/staff/rules")
    assert staff_try.status_code == 403


async def test_leaderboard_and_opt_in(client, shop):
    as_user(client, shop.resident)
    board = await client.get("/h5/points/leaderboard")
    assert "匿名邻居" in board.text and "（我）" in board.text
    opted = await post_form(
        client, "/h5/points/leaderboard", "/h5/points/preferences", {"leaderboard_opt_in": "1"}
    )
    assert opted.status_code == 303
    board = await client.get(opted.headers["location"])
    assert "王阿姨（我）" in board.text and "已在排行榜上公开昵称" in board.text
    staff_board = await as_user(client, shop.staff).get(
        "/h5/points/staff/leaderboard", params={"period": "year"}
    )
    assert "王阿姨" in staff_board.text


async def test_staff_download_the_export(client, shop):
    as_user(client, shop.staff)
    hub = await client.get("/h5/points/staff")
    start = re.search(r'name="start_date" value="([^"]+)"', hub.text).group(1)
    end = re.search(r'name="end_date" value="([^"]+)"', hub.text).group(1)
    response = await client.get(
        "/h5/points/staff/export",
        params={"community_id": shop.community.id, "start_date": start, "end_date": end},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    rows = list(load_workbook(io.BytesIO(response.content))["明细"].iter_rows(values_only=True))
    assert rows[1][3] == "138****0001"
    bad = await client.get("/h5/points/staff/export", params={"start_date": "x"})
    assert bad.status_code == 422


async def test_a_huge_id_is_a_page_not_a_500(client, shop):
    as_user(client, shop.resident)
    for path in ("/h5/points/rewards/99999999999999999999", "/h5/points/redemptions/0"):
        response = await client.get(path)
        assert response.status_code == 422, path


# --- reward pictures ---

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
_IMG = re.compile(r'<img class="[^"]*" src="([^"]+)"')

# What a browser sends for a file input left empty.
NO_FILE = ("", b"", "application/octet-stream")


def upload(name: str, content: bytes, declared: str = "image/png") -> dict:
    return {"picture": (name, content, declared)}


async def test_staff_upload_a_picture_that_the_shop_shows(client, shop):
    as_user(client, shop.staff)
    created = await post_form(
        client,
        "/h5/points/staff/rewards/new",
        "/h5/points/staff/rewards",
        {"community_id": str(shop.community.id), "title": "理发券", "cost": "80", "stock": "10"},
        upload("haircut.png", PNG),
    )
    assert created.status_code == 303, created.text
    reward = await Reward.get(title="理发券")

    as_user(client, shop.resident)
    shop_page = await client.get("/h5/points/rewards")
    sources = _IMG.findall(shop_page.text)
    assert len(sources) == 1 and sources[0].startswith(f"/api/v1/rewards/{reward.id}/picture?v=")
    served = await client.get(sources[0])
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    for path in (f"/h5/points/rewards/{reward.id}", f"/h5/points/rewards/{reward.id}/redeem"):
        assert _IMG.findall((await client.get(path)).text) == sources, path
    # The bag has no picture: its letter stands in.
    assert "环保购物袋" in shop_page.text and 'class="pt-glyph"' in shop_page.text


async def test_staff_replace_and_remove_a_picture_on_the_edit_form(client, shop):
    as_user(client, shop.staff)
    edit_url = f"/h5/points/staff/rewards/{shop.bag.id}"
    fields = {"title": "环保购物袋", "cost": "50", "per_user_limit": "1", "pickup_days": "7"}
    first = await post_form(
        client, edit_url, edit_url, fields | {"active": "1"}, upload("bag.png", PNG)
    )
    assert first.status_code == 303
    page = await client.get(edit_url)
    assert "更换图片" in page.text and "删除图片" in page.text
    old_src = _IMG.findall(page.text)[0]

    # Saving other fields without choosing a file keeps the picture.
    kept = await post_form(
        client, edit_url, edit_url, fields | {"active": "1"}, {"picture": NO_FILE}
    )
    assert kept.status_code == 303
    assert _IMG.findall((await client.get(edit_url)).text) == [old_src]

    clock.advance(timedelta(seconds=2))
    replaced = await post_form(
        client, edit_url, edit_url, fields | {"active": "1"}, upload("bag.jpg", JPEG, "image/jpeg")
    )
    assert replaced.status_code == 303
    new_src = _IMG.findall((await client.get(edit_url)).text)[0]
    assert new_src != old_src
    assert (await client.get(new_src)).content == JPEG

    removed = await post_form(client, edit_url, f"{edit_url}/picture/delete", {})
    assert removed.status_code == 303
    page = await client.get(removed.headers["location"])
    assert "图片已删除" in page.text and "删除图片" not in page.text
    assert _IMG.findall(page.text) == []
    assert (await client.get(new_src)).status_code == 404


async def test_a_bad_picture_is_refused_with_nothing_saved(client, shop):
    as_user(client, shop.staff)
    edit_url = f"/h5/points/staff/rewards/{shop.bag.id}"
    refused = await post_form(
        client,
        edit_url,
        edit_url,
        {"title": "新名字", "cost": "60", "per_user_limit": "1", "pickup_days": "7", "active": "1"},
        upload("bag.png", b"GIF89a" + b"\x00" * 16),
    )
    assert refused.status_code == 422
    assert "礼品图片须为 JPG、PNG 或 WebP 图片" in refused.text
    reward = await Reward.get(id=shop.bag.id)
    assert (reward.title, reward.cost) == ("环保购物袋", 50)
    assert not await RewardPicture.exists(reward_id=shop.bag.id)

    created = await post_form(
        client,
        "/h5/points/staff/rewards/new",
        "/h5/points/staff/rewards",
        {"community_id": str(shop.community.id), "title": "抽纸", "cost": "10", "stock": "5"},
        upload("big.png", PNG[:8] + b"\x00" * (2 * 1024 * 1024)),
    )
    assert created.status_code == 422 and "礼品图片不能超过 2 MB" in created.text
    assert not await Reward.exists(title="抽纸")


async def test_the_pickup_page_shows_the_picture(client, shop):
    await rewards.set_picture(actor=shop.staff, reward_id=shop.bag.id, content=PNG)
    redemption = await rewards.redeem_reward(user=shop.resident, reward_id=shop.bag.id)
    page = await as_user(client, shop.resident).get(f"/h5/points/redemptions/{redemption.id}")
    sources = _IMG.findall(page.text)
    assert len(sources) == 1 and sources[0].startswith(f"/api/v1/rewards/{shop.bag.id}/picture")
    assert (await client.get(sources[0])).content == PNG


async def test_only_staff_of_the_community_remove_a_picture(client, shop):
    await rewards.set_picture(actor=shop.staff, reward_id=shop.bag.id, content=PNG)
    outsider = await make_staff(await make_community())
    as_user(client, outsider)
    refused = await post_form(
        client,
        "/h5/points/leaderboard",
        f"/h5/points/staff/rewards/{shop.bag.id}/picture/delete",
        {},
    )
    assert refused.status_code == 403
    assert await RewardPicture.exists(reward_id=shop.bag.id)
