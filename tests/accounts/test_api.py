from datetime import timedelta

from backend.accounts.models import RoleGrant, User
from backend.accounts.service import SESSION_COOKIE, issue_access_token, issue_session_token
from backend.core.clock import clock
from backend.core.config import reset_settings
from backend.core.security import blind_index, decrypt_field
from tests.conftest import free_port
from tests.factories import (
    auth_headers,
    make_building,
    make_community,
    make_staff,
    make_street_admin,
    make_unit,
    make_user,
)

LOGIN = "/api/v1/auth/miniprogram/login"


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- mini-program login ---


async def test_login_goes_to_the_fake_wechat_and_returns_a_token(client, fake_wechat, settings):
    fake_wechat.register_code("code-ok", "openid-alice")

    response = await client.post(LOGIN, json={"code": "code-ok"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_ttl_seconds
    assert set(body["user"]) >= {
        "id",
        "nickname",
        "phone",
        "roles",
        "community_id",
        "building_id",
        "unit_id",
        "points_balance",
    }
    assert body["user"]["roles"] == []
    (call,) = fake_wechat.calls_to("/sns/jscode2session")
    assert call.query["appid"] == settings.mp_appid
    assert call.query["js_code"] == "code-ok"
    # code2session needs no access token: none is fetched, so none can race the bot's.
    assert "access_token" not in call.query
    assert (
        fake_wechat.calls_to("/cgi-bin/token")
        == fake_wechat.calls_to("/cgi-bin/stable_token")
        == []
    )

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_login_again_is_the_same_user(client, fake_wechat):
    fake_wechat.register_code("first", "openid-bob")
    fake_wechat.register_code("second", "openid-bob")

    first = await client.post(LOGIN, json={"code": "first"})
    second = await client.post(LOGIN, json={"code": "second"})

    assert first.json()["user"]["id"] == second.json()["user"]["id"]
    assert await User.all().count() == 1


async def test_a_code_wechat_rejects_is_401_wechat_login_failed(client, fake_wechat):
    response = await client.post(LOGIN, json={"code": "never-registered"})

    assert response.status_code == 401
    assert error_code(response) == "wechat_login_failed"
    assert response.json()["error"]["message"]
    assert len(fake_wechat.calls_to("/sns/jscode2session")) == 1
    assert await User.all().count() == 0


async def test_a_forced_wechat_error_is_401(client, fake_wechat):
    fake_wechat.register_code("used", "openid-carol")
    fake_wechat.fail_next("/sns/jscode2session", 40163, errmsg="code been used")

    response = await client.post(LOGIN, json={"code": "used"})

    assert response.status_code == 401
    assert error_code(response) == "wechat_login_failed"


async def test_unreachable_wechat_is_502_not_500(client, monkeypatch):
    monkeypatch.setenv("LINLI_WECHAT_API_BASE", f"http://127.0.0.1:{free_port()}")
    reset_settings()

    response = await client.post(LOGIN, json={"code": "whatever"})

    assert response.status_code == 502
    assert error_code(response) == "wechat_unavailable"
    assert "微信" in response.json()["error"]["message"]


async def test_login_with_bad_input_gets_the_envelope(client):
    missing = await client.post(LOGIN, json={})
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"] == {"code": "必填"}

    empty = await client.post(LOGIN, json={"code": ""})
    assert empty.status_code == 422 and "code" in empty.json()["error"]["fields"]

    garbage = await client.post(
        LOGIN, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 422
    assert error_code(garbage) == "invalid"


# --- tokens ---


async def test_no_credentials_is_401(client):
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_forged_tokens_are_401(client):
    user = await make_user()
    good = issue_access_token(user_id=user.id)
    forged = [
        "nonsense",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        issue_session_token(user_id=user.id),  # a cookie value is not a bearer token
    ]
    for token in forged:
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert error_code(response) == "unauthenticated"


async def test_expired_token_is_401(client, settings):
    user = await make_user()
    headers = auth_headers(user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200

    clock.advance(timedelta(seconds=settings.token_ttl_seconds + 1))

    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


async def test_token_of_a_deleted_user_is_401(client):
    user = await make_user()
    headers = auth_headers(user)
    await RoleGrant.filter(user_id=user.id).delete()
    await User.filter(id=user.id).delete()

    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_session_cookie_authenticates(client):
    user = await make_user(nickname="小林")
    client.cookies.set(SESSION_COOKIE, issue_session_token(user_id=user.id))

    response = await client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["nickname"] == "小林"


async def test_access_token_is_not_a_session_cookie(client):
    user = await make_user()
    client.cookies.set(SESSION_COOKIE, issue_access_token(user_id=user.id))

    assert (await client.get("/api/v1/me")).status_code == 401


# --- /me ---


async def test_me_shows_profile_and_roles(client):
    community = await make_community()
    unit = await make_unit(community=community)
    user = await make_user(
        nickname="王阿姨",
        community=community,
        unit=unit,
        phone="13812341234",
        points_balance=30,
        roles=["party_member"],
    )

    body = (await client.get("/api/v1/me", headers=auth_headers(user))).json()

    assert body["nickname"] == "王阿姨"
    assert body["phone"] == "138****1234"
    assert body["roles"] == ["resident", "party_member", "unit_member"]
    assert body["community_id"] == community.id
    assert body["unit_id"] == unit.id
    assert body["building_id"] is None
    assert body["points_balance"] == 30
    assert body["grants"] == [{"role": "party_member", "community_id": community.id}]


async def test_patch_me_masks_and_encrypts_the_phone(client):
    user = await make_user()

    response = await client.patch(
        "/api/v1/me", json={"phone": "138 1234 1234"}, headers=auth_headers(user)
    )

    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "138****1234"
    assert "13812341234" not in response.text
    stored = await User.filter(id=user.id).values("phone_encrypted", "phone_index")
    raw = stored[0]["phone_encrypted"]
    assert "13812341234" not in raw
    assert decrypt_field(raw) == "13812341234"
    assert stored[0]["phone_index"] == blind_index("13812341234")


async def test_patch_me_changes_only_what_is_sent(client):
    community = await make_community()
    building = await make_building(community=community)
    user = await make_user(nickname="旧名字", phone="13900001111")
    headers = auth_headers(user)

    response = await client.patch(
        "/api/v1/me",
        json={"community_id": community.id, "building_id": building.id},
        headers=headers,
    )
    body = response.json()
    assert body["community_id"] == community.id
    assert body["building_id"] == building.id
    assert body["nickname"] == "旧名字"
    assert body["phone"] == "139****1111"
    assert body["roles"] == ["resident"]

    cleared = await client.patch(
        "/api/v1/me",
        json={"nickname": " 新名字 ", "phone": None, "community_id": None},
        headers=headers,
    )
    body = cleared.json()
    assert body["nickname"] == "新名字"
    assert body["phone"] is None
    assert body["community_id"] is None
    assert body["building_id"] == building.id
    assert body["roles"] == []


async def test_patch_me_refuses_bad_values_with_fields(client):
    user = await make_user(nickname="原名")
    headers = auth_headers(user)

    response = await client.patch(
        "/api/v1/me",
        json={"phone": "12345678901", "community_id": 999999, "unit_id": 999999, "nickname": " "},
        headers=headers,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"phone", "community_id", "unit_id", "nickname"}
    assert (await User.get(id=user.id)).nickname == "原名"

    for body in ({"role": "staff"}, {"nickname": "x" * 65}, {"community_id": "abc"}):
        bad = await client.patch("/api/v1/me", json=body, headers=headers)
        assert bad.status_code == 422, body
        assert error_code(bad) == "invalid"


async def test_ids_beyond_any_column_are_422_not_500(client):
    admin = await make_street_admin()
    headers = auth_headers(admin)

    patched = await client.patch("/api/v1/me", json={"unit_id": 2**40}, headers=headers)
    granted = await client.post(
        "/api/v1/admin/grants", json={"user_id": 2**64, "role": "street_admin"}, headers=headers
    )
    revoked = await client.delete(
        "/api/v1/admin/grants", params={"user_id": 2**64, "role": "street_admin"}, headers=headers
    )

    assert patched.status_code == 422 and "unit_id" in patched.json()["error"]["fields"]
    assert granted.status_code == 422 and "user_id" in granted.json()["error"]["fields"]
    assert revoked.status_code == 422 and "user_id" in revoked.json()["error"]["fields"]


async def test_patch_me_needs_login(client):
    response = await client.patch("/api/v1/me", json={"nickname": "x"})
    assert response.status_code == 401


# --- grants ---


async def test_street_admin_grants_and_revokes_staff(client):
    community = await make_community()
    admin = await make_street_admin()
    target = await make_user()
    body = {"user_id": target.id, "role": "staff", "community_id": community.id}

    created = await client.post("/api/v1/admin/grants", json=body, headers=auth_headers(admin))
    again = await client.post("/api/v1/admin/grants", json=body, headers=auth_headers(admin))

    assert created.status_code == 201, created.text
    assert created.json()["role"] == "staff"
    assert created.json()["community_id"] == community.id
    assert again.status_code == 201
    assert again.json()["id"] == created.json()["id"]
    me = (await client.get("/api/v1/me", headers=auth_headers(target))).json()
    assert me["roles"] == ["staff"]

    params = {"user_id": target.id, "role": "staff", "community_id": community.id}
    revoked = await client.delete(
        "/api/v1/admin/grants", params=params, headers=auth_headers(admin)
    )
    assert revoked.json() == {"revoked": True}
    revoked_again = await client.delete(
        "/api/v1/admin/grants", params=params, headers=auth_headers(admin)
    )
    assert revoked_again.json() == {"revoked": False}
    assert not await RoleGrant.exists(user_id=target.id)


async def test_only_street_admins_use_the_grant_api(client):
    community = await make_community()
    staff = await make_staff(community)
    target = await make_user()
    body = {"user_id": target.id, "role": "staff", "community_id": community.id}

    anonymous = await client.post("/api/v1/admin/grants", json=body)
    as_staff = await client.post("/api/v1/admin/grants", json=body, headers=auth_headers(staff))
    as_staff_delete = await client.delete(
        "/api/v1/admin/grants", params=body, headers=auth_headers(staff)
    )

    assert anonymous.status_code == 401
    assert as_staff.status_code == 403 and error_code(as_staff) == "forbidden"
    assert as_staff_delete.status_code == 403
    assert not await RoleGrant.exists(user_id=target.id)


async def test_grant_api_refuses_bad_grants(client):
    community = await make_community()
    admin = await make_street_admin()
    target = await make_user()
    headers = auth_headers(admin)

    cases = [
        ({"user_id": target.id, "role": "resident"}, 422, "role"),
        ({"user_id": target.id, "role": "staff"}, 422, "community_id"),
        ({"user_id": target.id, "role": "staff", "community_id": 999999}, 422, "community_id"),
        (
            {"user_id": target.id, "role": "street_admin", "community_id": community.id},
            422,
            "community_id",
        ),
        ({"user_id": 999999, "role": "street_admin"}, 404, None),
    ]
    for body, status, field in cases:
        response = await client.post("/api/v1/admin/grants", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        if field:
            assert field in response.json()["error"]["fields"], body


async def test_openapi_documents_accounts_errors(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert {"401", "422"} <= set(paths["/api/v1/auth/miniprogram/login"]["post"]["responses"])
    assert "401" in paths["/api/v1/me"]["get"]["responses"]
    assert {"401", "422"} <= set(paths["/api/v1/me"]["patch"]["responses"])
    assert {"401", "403", "422"} <= set(paths["/api/v1/admin/grants"]["post"]["responses"])
    assert {"401", "403"} <= set(paths["/api/v1/admin/grants"]["delete"]["responses"])
