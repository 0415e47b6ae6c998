import pytest

from backend.accounts.models import User
from backend.core.pagination import encode_cursor
from backend.points import ledger
from backend.points.models import PointsLedgerEntry
from tests.factories import auth_headers, make_community, make_staff, make_street_admin, make_user
from tests.factories.points import award

ME_POINTS = "/api/v1/me/points"
ADJUST = "/api/v1/points/adjustments"


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
async def neighbourhood(db):
    community = await make_community()
    return {
        "community": community,
        "staff": await make_staff(community),
        "resident": await make_user(community=community),
    }


# --- GET /me/points ---


async def test_my_points_needs_login(client):
    response = await client.get(ME_POINTS)
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


async def test_my_points_shows_balance_and_newest_first(client):
    user = await make_user()
    await award(user.id, 10, "a1")
    await award(user.id, 20, "a2")
    await ledger.spend(
        user_id=user.id, amount=5, source_type="reward", source_id="r1", reason="兑换礼品"
    )

    response = await client.get(ME_POINTS, headers=auth_headers(user))

    assert response.status_code == 200
    body = response.json()
    assert body["balance"] == 25
    assert [(i["delta"], i["balance_after"], i["reason"]) for i in body["items"]] == [
        (-5, 25, "兑换礼品"),
        (20, 30, "参加活动"),
        (10, 10, "参加活动"),
    ]
    assert body["next_cursor"] is None
    assert set(body["items"][0]) >= {
        "id",
        "delta",
        "balance_after",
        "source_type",
        "source_id",
        "reason",
        "created_at",
    }


async def test_my_points_pages_through_the_ledger(client):
    user = await make_user()
    for n in range(5):
        await award(user.id, 1, f"a{n}")
    headers = auth_headers(user)

    seen = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(ME_POINTS, params=params, headers=headers)).json()
        seen += [i["source_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert seen == ["a4", "a3", "a2", "a1", "a0"]


async def test_my_points_shows_only_my_own_ledger(client):
    me, other = await make_user(), await make_user()
    await award(other.id, 10, "a1")

    body = (await client.get(ME_POINTS, headers=auth_headers(me))).json()

    assert body == {"balance": 0, "expiring": [], "items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        encode_cursor(5, descending=False),  # an oldest-first cursor on a newest-first list
        encode_cursor(2**63, descending=True),  # past any 64-bit id
    ],
)
async def test_my_points_refuses_a_bad_cursor(client, cursor):
    user = await make_user()
    response = await client.get(ME_POINTS, params={"cursor": cursor}, headers=auth_headers(user))
    assert response.status_code == 422
    assert error_code(response) == "invalid"
    assert "cursor" in response.json()["error"]["fields"]


# --- POST /points/adjustments ---


async def test_staff_adjusts_a_resident_of_their_community(client, neighbourhood):
    staff, resident = neighbourhood["staff"], neighbourhood["resident"]

    response = await client.post(
        ADJUST,
        json={"user_id": resident.id, "delta": 30, "reason": "线下志愿服务补录"},
        headers=auth_headers(staff),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_id"] == resident.id
    assert (body["delta"], body["balance_after"], body["actor_id"]) == (30, 30, staff.id)
    assert body["source_type"] == "adjustment"
    assert (await User.get(id=resident.id)).points_balance == 30


async def test_a_negative_adjustment_never_goes_below_zero(client, neighbourhood):
    staff, resident = neighbourhood["staff"], neighbourhood["resident"]
    await award(resident.id, 10, "a1")

    response = await client.post(
        ADJUST,
        json={"user_id": resident.id, "delta": -11, "reason": "误发扣回"},
        headers=auth_headers(staff),
    )

    assert response.status_code == 409
    assert response.json()["error"] == {"code": "insufficient_points", "message": "积分不足"}
    assert (await User.get(id=resident.id)).points_balance == 10


async def test_a_resident_may_not_adjust(client, neighbourhood):
    resident = neighbourhood["resident"]
    response = await client.post(
        ADJUST,
        json={"user_id": resident.id, "delta": 100, "reason": "给自己加分"},
        headers=auth_headers(resident),
    )
    assert response.status_code == 403
    assert error_code(response) == "forbidden"
    assert (await User.get(id=resident.id)).points_balance == 0


async def test_staff_of_another_community_may_not_adjust(client, neighbourhood):
    outsider = await make_staff(await make_community())
    response = await client.post(
        ADJUST,
        json={"user_id": neighbourhood["resident"].id, "delta": 5, "reason": "补录"},
        headers=auth_headers(outsider),
    )
    assert response.status_code == 403
    assert await PointsLedgerEntry.all().count() == 0


async def test_street_admin_may_adjust(client, neighbourhood):
    admin = await make_street_admin()
    response = await client.post(
        ADJUST,
        json={"user_id": neighbourhood["resident"].id, "delta": 5, "reason": "补录"},
        headers=auth_headers(admin),
    )
    assert response.status_code == 201


async def test_adjusting_an_unknown_user_is_not_found(client, neighbourhood):
    response = await client.post(
        ADJUST,
        json={"user_id": 99999999, "delta": 5, "reason": "补录"},
        headers=auth_headers(neighbourhood["staff"]),
    )
    assert response.status_code == 404
    assert error_code(response) == "not_found"


async def test_adjustment_needs_login(client):
    response = await client.post(ADJUST, json={"user_id": 1, "delta": 5, "reason": "补录"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delta": 5, "reason": "补录"}, "user_id"),
        ({"user_id": 2**63, "delta": 5, "reason": "补录"}, "user_id"),
        ({"user_id": "{uid}", "delta": 0, "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": 10001, "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": -10001, "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": 1.5, "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": "5", "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": True, "reason": "补录"}, "delta"),
        ({"user_id": "{uid}", "delta": 5}, "reason"),
        ({"user_id": "{uid}", "delta": 5, "reason": " 补 "}, "reason"),
        ({"user_id": "{uid}", "delta": 5, "reason": "长" * 201}, "reason"),
        ({"user_id": "{uid}", "delta": 5, "reason": "补录", "extra": 1}, "extra"),
    ],
)
async def test_bad_adjustments_are_invalid(client, neighbourhood, body, field):
    body = {k: (neighbourhood["resident"].id if v == "{uid}" else v) for k, v in body.items()}

    response = await client.post(ADJUST, json=body, headers=auth_headers(neighbourhood["staff"]))

    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid"
    assert field in response.json()["error"]["fields"]
    assert await PointsLedgerEntry.all().count() == 0


async def test_adjustment_with_an_idempotency_key_happens_once(client, neighbourhood):
    staff, resident = neighbourhood["staff"], neighbourhood["resident"]
    headers = auth_headers(staff) | {"Idempotency-Key": "adj-1"}
    body = {"user_id": resident.id, "delta": 12, "reason": "补录"}

    first = await client.post(ADJUST, json=body, headers=headers)
    again = await client.post(ADJUST, json=body, headers=headers)
    mismatch = await client.post(ADJUST, json=body | {"delta": 13}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert mismatch.status_code == 422
    assert error_code(mismatch) == "idempotency_mismatch"
    assert (await User.get(id=resident.id)).points_balance == 12
    assert await PointsLedgerEntry.filter(user_id=resident.id).count() == 1


async def test_a_refused_adjustment_may_be_retried_with_the_same_key(client, neighbourhood):
    staff, resident = neighbourhood["staff"], neighbourhood["resident"]
    headers = auth_headers(staff) | {"Idempotency-Key": "adj-2"}
    body = {"user_id": resident.id, "delta": -5, "reason": "扣回"}

    refused = await client.post(ADJUST, json=body, headers=headers)
    await award(resident.id, 5, "a1")
    retried = await client.post(ADJUST, json=body, headers=headers)

    assert refused.status_code == 409
    assert retried.status_code == 201
    assert (await User.get(id=resident.id)).points_balance == 0


async def test_openapi_documents_the_points_routes(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"401", "422"} <= set(paths[ME_POINTS]["get"]["responses"])
    assert {"201", "401", "403", "404", "409", "422"} <= set(paths[ADJUST]["post"]["responses"])
