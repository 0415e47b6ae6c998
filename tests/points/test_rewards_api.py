"""The rewards and redemptions API of API.md, with its error codes and Idempotency-Key."""

from datetime import datetime, timedelta

import pytest

from backend.accounts.models import User
from backend.core.clock import clock
from backend.points import ledger
from backend.points.models import Redemption, Reward
from tests.factories import auth_headers, make_community, make_staff, make_user

REWARDS = "/api/v1/rewards"


def code_of(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
async def shop(db):
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)
    await ledger.award(
        user_id=resident.id, amount=100, source_type="activity", source_id="a1", reason="参加活动"
    )
    return {"community": community, "staff": staff, "resident": resident}


async def put_up(client, shop, **extra) -> dict:
    body = {"community_id": shop["community"].id, "title": "抽纸", "cost": 40, "stock": 3}
    response = await client.post(REWARDS, json=body | extra, headers=auth_headers(shop["staff"]))
    assert response.status_code == 201, response.text
    return response.json()


async def test_staff_put_up_a_reward_and_anyone_lists_it(client, shop):
    created = await put_up(
        client,
        shop,
        per_user_limit=2,
        description="清风抽纸一提",
        image_url="https://img.example.cn/tissue.jpg",
        pickup_place="居委会服务窗口",
        pickup_days=5,
    )
    assert created["stock"] == 3 and created["on_sale"] is True
    assert (created["per_user_limit"], created["pickup_days"]) == (2, 5)

    listed = (await client.get(REWARDS, params={"community_id": shop["community"].id})).json()
    assert [r["id"] for r in listed["items"]] == [created["id"]]
    assert listed["next_cursor"] is None
    one = await client.get(f"{REWARDS}/{created['id']}")
    assert one.json()["title"] == "抽纸"


async def test_redeem_returns_a_pickup_code(client, shop):
    reward = await put_up(client, shop)
    response = await client.post(
        f"{REWARDS}/{reward['id']}/redeem", headers=auth_headers(shop["resident"])
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending_pickup"
    assert len(body["pickup_code"]) == 8
    assert body["pickup_url"].endswith(f"/h5/points/staff/verify?code={body['pickup_code']}")
    assert body["reward_title"] == "抽纸"
    assert (await User.get(id=shop["resident"].id)).points_balance == 60

    mine = await client.get("/api/v1/me/redemptions", headers=auth_headers(shop["resident"]))
    assert [r["id"] for r in mine.json()["items"]] == [body["id"]]


async def test_redeem_refusals_have_their_codes(client, shop):
    reward = await put_up(client, shop, stock=1, cost=60, per_user_limit=1)
    url = f"{REWARDS}/{reward['id']}/redeem"
    poor = await make_user(community=shop["community"])

    assert code_of(await client.post(url, headers=auth_headers(poor))) == "insufficient_points"
    assert (await client.post(url, headers=auth_headers(shop["resident"]))).status_code == 201
    sold_out = await client.post(url, headers=auth_headers(shop["resident"]))
    assert (sold_out.status_code, code_of(sold_out)) == (409, "out_of_stock")
    await client.post(
        f"{REWARDS}/{reward['id']}/stock", json={"delta": 5}, headers=auth_headers(shop["staff"])
    )
    limited = await client.post(url, headers=auth_headers(shop["resident"]))
    assert (limited.status_code, code_of(limited)) == (409, "limit_reached")
    missing = await client.post(f"{REWARDS}/999999/redeem", headers=auth_headers(poor))
    assert missing.status_code == 404
    assert (await client.post(url)).status_code == 401


async def test_redeem_with_an_idempotency_key_happens_once(client, shop):
    reward = await put_up(client, shop)
    url = f"{REWARDS}/{reward['id']}/redeem"
    headers = auth_headers(shop["resident"]) | {"Idempotency-Key": "redeem-1"}

    first = await client.post(url, headers=headers)
    again = await client.post(url, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert await Redemption.all().count() == 1
    assert (await Reward.get(id=reward["id"])).stock == 2


async def test_staff_verify_and_the_second_time_is_refused(client, shop):
    reward = await put_up(client, shop)
    redeemed = (
        await client.post(
            f"{REWARDS}/{reward['id']}/redeem", headers=auth_headers(shop["resident"])
        )
    ).json()
    staff = auth_headers(shop["staff"])

    looked_up = await client.post(
        "/api/v1/redemptions/lookup", json={"pickup_code": redeemed["pickup_code"]}, headers=staff
    )
    assert looked_up.json()["id"] == redeemed["id"]
    verified = await client.post(
        "/api/v1/redemptions/verify", json={"pickup_code": redeemed["pickup_code"]}, headers=staff
    )
    again = await client.post(
        "/api/v1/redemptions/verify", json={"pickup_code": redeemed["pickup_code"]}, headers=staff
    )

    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "fulfilled"
    assert (again.status_code, code_of(again)) == (409, "already_fulfilled")
    by_resident = await client.post(
        "/api/v1/redemptions/verify",
        json={"pickup_code": redeemed["pickup_code"]},
        headers=auth_headers(shop["resident"]),
    )
    assert by_resident.status_code == 403
    unknown = await client.post(
        "/api/v1/redemptions/verify", json={"pickup_code": "12"}, headers=staff
    )
    assert (unknown.status_code, code_of(unknown)) == (404, "pickup_code_not_found")


async def test_staff_cancel_and_the_points_come_back(client, shop):
    reward = await put_up(client, shop)
    redeemed = (
        await client.post(
            f"{REWARDS}/{reward['id']}/redeem", headers=auth_headers(shop["resident"])
        )
    ).json()

    refused = await client.post(
        f"/api/v1/redemptions/{redeemed['id']}/cancel",
        json={"reason": "不要了"},
        headers=auth_headers(shop["resident"]),
    )
    cancelled = await client.post(
        f"/api/v1/redemptions/{redeemed['id']}/cancel",
        json={"reason": "居民来电取消"},
        headers=auth_headers(shop["staff"]),
    )

    assert refused.status_code == 403
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await User.get(id=shop["resident"].id)).points_balance == 100
    assert (await Reward.get(id=reward["id"])).stock == 3


async def test_a_redemption_is_visible_to_its_holder_and_staff_only(client, shop):
    reward = await put_up(client, shop)
    redeemed = (
        await client.post(
            f"{REWARDS}/{reward['id']}/redeem", headers=auth_headers(shop["resident"])
        )
    ).json()
    url = f"/api/v1/redemptions/{redeemed['id']}"
    stranger = await make_user(community=shop["community"])

    assert (await client.get(url, headers=auth_headers(shop["resident"]))).status_code == 200
    assert (await client.get(url, headers=auth_headers(shop["staff"]))).status_code == 200
    assert (await client.get(url, headers=auth_headers(stranger))).status_code == 404
    listed = await client.get(
        "/api/v1/redemptions",
        params={"community_id": shop["community"].id, "status": "pending_pickup"},
        headers=auth_headers(shop["staff"]),
    )
    assert [r["id"] for r in listed.json()["items"]] == [redeemed["id"]]


async def test_staff_edit_and_withdraw_a_reward(client, shop):
    reward = await put_up(client, shop)
    url = f"{REWARDS}/{reward['id']}"
    staff = auth_headers(shop["staff"])

    edited = await client.patch(url, json={"cost": 45, "pickup_place": "活动室"}, headers=staff)
    assert (edited.json()["cost"], edited.json()["pickup_place"]) == (45, "活动室")
    withdrawn = await client.patch(url, json={"active": False}, headers=staff)
    assert withdrawn.json()["on_sale"] is False
    listed = (await client.get(REWARDS)).json()["items"]
    assert listed == []
    refused = await client.post(f"{url}/redeem", headers=auth_headers(shop["resident"]))
    assert code_of(refused) == "not_on_sale"


async def test_a_future_sale_window_is_not_on_sale_yet(client, shop):
    start = clock.now() + timedelta(days=2)
    reward = await put_up(client, shop, on_sale_from=start.isoformat())
    assert reward["on_sale"] is False
    on_sale = (await client.get(REWARDS, params={"on_sale": "true"})).json()["items"]
    assert on_sale == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cost": 0}, "cost"),
        ({"cost": "10"}, "cost"),
        ({"stock": -5}, "stock"),
        ({"title": ""}, "title"),
        ({"title": "长" * 41}, "title"),
        ({"on_sale_from": "2030-01-01T00:00:00"}, "on_sale_from"),
        ({"on_sale_until": "9999-12-31T23:00:00-12:00"}, "on_sale_until"),
        ({"on_sale_from": "0001-01-01T00:00:00+08:00"}, "on_sale_from"),
        ({"image_url": "ftp://x"}, "image_url"),
        ({"community_id": 2**40}, "community_id"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_reward_bodies_are_422(client, shop, body, field):
    base = {"community_id": shop["community"].id, "title": "抽纸", "cost": 40, "stock": 3}
    response = await client.post(REWARDS, json=base | body, headers=auth_headers(shop["staff"]))
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]


async def test_a_resident_may_not_put_up_rewards(client, shop):
    body = {"community_id": shop["community"].id, "title": "抽纸", "cost": 40, "stock": 3}
    response = await client.post(REWARDS, json=body, headers=auth_headers(shop["resident"]))
    assert response.status_code == 403


async def test_my_points_says_what_expires(client, shop):
    body = (await client.get("/api/v1/me/points", headers=auth_headers(shop["resident"]))).json()
    assert body["balance"] == 100
    assert [e["amount"] for e in body["expiring"]] == [100]
    expires_at = datetime.fromisoformat(body["expiring"][0]["expires_at"])
    assert expires_at == ledger.expiry_for(clock.now())


async def test_openapi_documents_the_reward_routes(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    redeem = paths["/api/v1/rewards/{reward_id}/redeem"]["post"]["responses"]
    assert {"201", "401", "404", "409", "422"} <= set(redeem)
    verify = paths["/api/v1/redemptions/verify"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(verify)
    assert "get" in paths["/api/v1/points/leaderboard"]
    assert "get" in paths["/api/v1/points/export"]
