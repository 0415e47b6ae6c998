"""Sessions that can be ended: logout, a role revoke and the token version; cookie requests
from another site refused."""

from __future__ import annotations

import pytest

from backend.accounts import service
from backend.accounts.models import User
from backend.activities.models import Booking
from backend.party import registrations
from backend.party.models import PartyRegistration
from tests.factories import make_community, make_staff, make_street_admin, make_user
from tests.factories.activities import freeze, make_activity

LOGIN = "/api/v1/auth/miniprogram/login"
SITE = "http://testserver"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client, fake_wechat, code: str, openid: str) -> str:
    fake_wechat.register_code(code, openid)
    response = await client.post(LOGIN, json={"code": code})
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def test_logout_ends_every_token_and_a_fresh_login_works(client, fake_wechat):
    token = await _login(client, fake_wechat, "c1", "openid-logout")
    user = await User.get(nickname="微信用户")
    cookie = service.issue_session_token(user_id=user.id, token_version=user.token_version)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200

    out = await client.post("/api/v1/auth/logout", headers=bearer(token))

    assert out.status_code == 204
    assert (await User.get(id=user.id)).token_version == 1
    stale = await client.get("/api/v1/me", headers=bearer(token))
    assert stale.status_code == 401
    assert stale.json()["error"]["code"] == "unauthenticated"
    # The H5 cookie issued before the logout is dead too.
    assert (await client.get("/api/v1/me", cookies={"linli_session": cookie})).status_code == 401
    assert (await client.get("/h5/", cookies={"linli_session": cookie})).status_code == 302

    fresh = await _login(client, fake_wechat, "c2", "openid-logout")
    me = await client.get("/api/v1/me", headers=bearer(fresh))
    assert me.status_code == 200 and me.json()["id"] == user.id


async def test_logout_needs_a_live_token(client):
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 401


async def test_revoke_by_an_admin_ends_the_holders_sessions(client):
    community = await make_community()
    admin = await make_street_admin()
    staff = await make_staff(community)
    old = service.issue_access_token(user_id=staff.id)
    admin_token = service.issue_access_token(user_id=admin.id)
    assert (await client.get("/api/v1/me", headers=bearer(old))).status_code == 200

    revoked = await client.delete(
        "/api/v1/admin/grants",
        params={"user_id": staff.id, "role": "staff", "community_id": community.id},
        headers=bearer(admin_token),
    )

    assert revoked.json() == {"revoked": True}
    assert (await client.get("/api/v1/me", headers=bearer(old))).status_code == 401
    # The admin's own token is untouched.
    assert (await client.get("/api/v1/me", headers=bearer(admin_token))).status_code == 200
    staff = await User.get(id=staff.id)
    fresh = service.issue_access_token(user_id=staff.id, token_version=staff.token_version)
    me = await client.get("/api/v1/me", headers=bearer(fresh))
    assert me.status_code == 200 and "staff" not in me.json()["roles"]


async def test_revoking_a_role_not_held_keeps_sessions(db):
    community = await make_community()
    user = await make_user(community=community)
    admin = await make_street_admin()
    assert not await service.revoke_role(
        actor=admin, user_id=user.id, role="staff", community_id=community.id
    )
    assert (await User.get(id=user.id)).token_version == 0


async def test_leaving_the_party_report_in_oneself_keeps_the_session(client):
    community = await make_community()
    member = await make_user(community=community, roles=["party_member"])
    await PartyRegistration.create(
        user=member,
        community=community,
        name="李建国",
        phone_encrypted="x",
        phone_index="x",
        work_unit="某单位",
        party_org="某党委",
        status="approved",
        active_key=f"u{member.id}",
        created_at=freeze(),
    )
    token = service.issue_access_token(user_id=member.id)

    await registrations.withdraw_registration(user=member)

    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and "party_member" not in me.json()["roles"]


async def test_booking_with_a_logged_out_token_is_401_and_books_nothing(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=5)
    user = await make_user(community=community)
    token = service.issue_access_token(user_id=user.id)
    await service.logout(user=user)

    response = await client.post(
        f"/api/v1/activities/{activity.id}/bookings", headers=bearer(token)
    )

    assert response.status_code == 401
    assert not await Booking.exists(user_id=user.id)
    fresh = service.issue_access_token(user_id=user.id, token_version=1)
    booked = await client.post(f"/api/v1/activities/{activity.id}/bookings", headers=bearer(fresh))
    assert booked.status_code == 201, booked.text


async def test_tokens_signed_without_a_version_count_as_version_zero(db):
    from backend.core.security import sign_token

    user = await make_user()
    legacy = sign_token({"uid": user.id}, ttl_seconds=60, salt="access")
    assert (await service.authenticate(token=legacy, kind="access")).id == user.id
    await service.logout(user=user)
    with pytest.raises(Exception, match="unauthenticated"):
        await service.authenticate(token=legacy, kind="access")


# --- cookie requests from another site ---


async def _cookie_user(client):
    community = await make_community()
    user = await make_user(community=community, nickname="原名")
    client.cookies.set("linli_session", service.issue_session_token(user_id=user.id))
    return user


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://testserver.evil.example"},
        {},
    ],
    ids=["other origin", "opaque origin", "other referer", "look-alike host", "no origin"],
)
async def test_cookie_post_from_another_site_is_403(client, headers):
    user = await _cookie_user(client)

    response = await client.patch("/api/v1/me", json={"nickname": "被改"}, headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin"
    assert "其他网站" in response.json()["error"]["message"]
    assert (await User.get(id=user.id)).nickname == "原名"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": SITE},
        {"Referer": f"{SITE}/h5/me"},
        {"Origin": "http://127.0.0.1:8000"},  # LINLI_PUBLIC_BASE_URL's origin
    ],
    ids=["own host", "own referer", "public base url"],
)
async def test_cookie_post_from_this_site_works(client, headers):
    user = await _cookie_user(client)

    response = await client.patch("/api/v1/me", json={"nickname": "新名"}, headers=headers)

    assert response.status_code == 200, response.text
    assert (await User.get(id=user.id)).nickname == "新名"


async def test_bearer_post_from_any_origin_works(client):
    user = await make_user(nickname="原名")
    token = service.issue_access_token(user_id=user.id)

    response = await client.patch(
        "/api/v1/me",
        json={"nickname": "小程序改名"},
        headers={**bearer(token), "Origin": "https://evil.example"},
    )

    assert response.status_code == 200
    assert (await User.get(id=user.id)).nickname == "小程序改名"


async def test_cookie_reads_from_another_site_are_not_refused(client):
    await _cookie_user(client)
    response = await client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200


async def test_cross_origin_cookie_booking_is_403(client):
    freeze()
    community = await make_community()
    activity = await make_activity(community, capacity=5)
    user = await make_user(community=community)
    client.cookies.set("linli_session", service.issue_session_token(user_id=user.id))

    response = await client.post(
        f"/api/v1/activities/{activity.id}/bookings", headers={"Origin": "https://evil.example"}
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin"
    assert not await Booking.exists(user_id=user.id)


async def test_openapi_documents_cross_origin_on_every_cookie_write(client):
    spec = (await client.get("/openapi.json")).json()
    writes = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch", "delete")
        and {"APIKeyCookie": []} in operation.get("security", [])
    ]
    assert len(writes) > 20
    for path, method, operation in writes:
        assert "cross_origin" in operation["responses"]["403"]["description"], (method, path)
    assert "/api/v1/auth/logout" in spec["paths"]
