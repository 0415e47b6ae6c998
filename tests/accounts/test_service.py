import asyncio
from urllib.parse import parse_qs, urlparse

import pytest
from tortoise.transactions import in_transaction

from backend.accounts import service
from backend.accounts.models import RoleGrant, User, WechatIdentity
from backend.core.config import reset_settings
from backend.core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from backend.core.models import OutboxMessage
from tests.conftest import PROD_ENV
from tests.factories import make_community, make_staff, make_street_admin, make_user


async def welcome_rows(user_id: int) -> list[OutboxMessage]:
    return await OutboxMessage.filter(user_id=user_id, dedupe_key=f"welcome:{user_id}")


# --- tokens ---


async def test_authenticate_returns_the_user_of_each_token_kind(db):
    user = await make_user()

    access = await service.authenticate(
        token=service.issue_access_token(user_id=user.id), kind="access"
    )
    session = await service.authenticate(
        token=service.issue_session_token(user_id=user.id), kind="session"
    )

    assert access.id == session.id == user.id


async def test_authenticate_refuses_a_token_of_the_other_kind(db):
    user = await make_user()

    with pytest.raises(Unauthenticated) as caught:
        await service.authenticate(
            token=service.issue_access_token(user_id=user.id), kind="session"
        )
    assert caught.value.code == "unauthenticated"


# --- WeChat login ---


async def test_first_miniprogram_login_welcomes_exactly_once(db, fake_wechat, settings):
    fake_wechat.register_code("c1", "openid-new")
    fake_wechat.register_code("c2", "openid-new")

    token, expires_in, user = await service.login_miniprogram(code="c1")
    await service.login_miniprogram(code="c2")

    assert expires_in == settings.token_ttl_seconds
    assert (await service.authenticate(token=token, kind="access")).id == user.id
    (welcome,) = await welcome_rows(user.id)
    assert welcome.template_key == "notice"
    assert welcome.channel == "user"
    assert welcome.context["title"] == "欢迎加入邻里"
    assert welcome.context["url"] == "/h5/"
    assert await OutboxMessage.all().count() == 1
    identity = await WechatIdentity.get(user_id=user.id)
    assert (identity.kind, identity.app_id, identity.openid) == (
        "miniprogram",
        settings.mp_appid,
        "openid-new",
    )


async def test_miniprogram_then_official_account_with_one_unionid_is_one_user(
    db, fake_wechat, settings
):
    fake_wechat.register_code("mp-code", "mp-openid", unionid="union-1")
    fake_wechat.register_code("oa-code", "oa-openid", unionid="union-1")

    _, _, from_mp = await service.login_miniprogram(code="mp-code")
    from_oa = await service.login_official_account(code="oa-code")

    assert from_oa.id == from_mp.id
    assert await User.all().count() == 1
    identities = await WechatIdentity.filter(user_id=from_mp.id).order_by("id")
    assert [(i.kind, i.app_id, i.openid) for i in identities] == [
        ("miniprogram", settings.mp_appid, "mp-openid"),
        ("official_account", settings.oa_appid, "oa-openid"),
    ]
    assert len(await welcome_rows(from_mp.id)) == 1
    assert len(fake_wechat.calls_to("/sns/oauth2/access_token")) == 1


async def test_official_account_then_miniprogram_with_one_unionid_is_one_user(db, fake_wechat):
    fake_wechat.register_code("oa-code", "oa-openid", unionid="union-2")
    fake_wechat.register_code("mp-code", "mp-openid", unionid="union-2")

    from_oa = await service.login_official_account(code="oa-code")
    _, _, from_mp = await service.login_miniprogram(code="mp-code")

    assert from_mp.id == from_oa.id
    assert await OutboxMessage.all().count() == 1


async def test_identities_without_a_shared_unionid_stay_apart(db, fake_wechat):
    fake_wechat.register_code("mp-code", "same-openid", unionid="union-a")
    fake_wechat.register_code("oa-code", "same-openid", unionid="union-b")

    _, _, from_mp = await service.login_miniprogram(code="mp-code")
    from_oa = await service.login_official_account(code="oa-code")

    assert from_oa.id != from_mp.id
    assert await OutboxMessage.all().count() == 2


async def test_unionid_learned_later_links_the_next_identity(db, fake_wechat):
    fake_wechat.register_code("before", "mp-openid")
    fake_wechat.register_code("after", "mp-openid", unionid="union-late")
    fake_wechat.register_code("oa-code", "oa-openid", unionid="union-late")

    _, _, user = await service.login_miniprogram(code="before")
    await service.login_miniprogram(code="after")
    from_oa = await service.login_official_account(code="oa-code")

    assert from_oa.id == user.id
    assert (await User.get(id=user.id)).unionid == "union-late"


async def test_concurrent_first_logins_make_one_user_and_one_welcome(db, fake_wechat):
    for i in range(4):
        fake_wechat.register_code(f"mp-{i}", "racing-openid", unionid="union-race")
        fake_wechat.register_code(f"oa-{i}", "racing-oa-openid", unionid="union-race")

    async def mp(i: int) -> int:
        return (await service.login_miniprogram(code=f"mp-{i}"))[2].id

    async def oa(i: int) -> int:
        return (await service.login_official_account(code=f"oa-{i}")).id

    ids = await asyncio.gather(*(f(i) for i in range(4) for f in (mp, oa)))

    assert len(set(ids)) == 1
    assert await User.all().count() == 1
    assert await WechatIdentity.all().count() == 2
    assert len(await welcome_rows(ids[0])) == 1


async def test_rejected_official_account_code_is_wechat_login_failed(db, fake_wechat):
    with pytest.raises(Unauthenticated) as caught:
        await service.login_official_account(code="unknown")

    assert caught.value.code == "wechat_login_failed"
    assert caught.value.status_code == 401
    assert len(fake_wechat.calls_to("/sns/oauth2/access_token")) == 1


def test_oauth_authorize_url_is_snsapi_base_with_state(settings):
    url = service.oauth_authorize_url(
        redirect_uri="https://linli.example/h5/auth/callback?next=/h5/", state="st-123"
    )

    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == (
        "https",
        "open.weixin.qq.com",
        "/connect/oauth2/authorize",
    )
    query = parse_qs(parsed.query)
    assert query["appid"] == [settings.oa_appid]
    assert query["redirect_uri"] == ["https://linli.example/h5/auth/callback?next=/h5/"]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["snsapi_base"]
    assert query["state"] == ["st-123"]
    assert parsed.fragment == "wechat_redirect"


# --- demo personas ---


async def test_persona_login_in_dev(db):
    resident = await make_user(persona="resident", nickname="演示居民")
    await make_user(persona="staff")
    await make_user()

    assert (await service.login_persona(persona="resident")).id == resident.id
    assert [u.persona for u in await service.list_personas()] == ["resident", "staff"]
    with pytest.raises(NotFound):
        await service.login_persona(persona="nobody")


async def test_persona_login_is_refused_in_prod(db, monkeypatch):
    await make_user(persona="resident")
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    reset_settings()

    assert not service.personas_enabled()
    with pytest.raises(Forbidden) as caught:
        await service.login_persona(persona="resident")
    assert caught.value.code == "forbidden"
    assert "开发环境" in caught.value.message
    with pytest.raises(Forbidden):
        await service.list_personas()


# --- profile ---


async def test_update_profile_keeps_the_phone_out_of_the_database_in_clear(db):
    user = await make_user()

    updated = await service.update_profile(user=user, phone="+86 139-0000-2222")

    raw = (await User.filter(id=user.id).values_list("phone_encrypted", flat=True))[0]
    assert "13900002222" not in raw
    assert (await service.describe_user(user=updated)).phone == "139****2222"


async def test_update_profile_validates_every_field(db):
    user = await make_user()

    with pytest.raises(Invalid) as caught:
        await service.update_profile(
            user=user, nickname="\x07", phone="2345", building_id=424242, unit_id=2**40
        )

    assert set(caught.value.fields) == {"nickname", "phone", "building_id", "unit_id"}


# --- roles and scope ---


async def test_roles_follow_profile_and_grants(db):
    community = await make_community()
    other = await make_community()
    user = await make_user(community=community, roles=["party_member"])
    await service.grant_role(actor=None, user_id=user.id, role="staff", community_id=other.id)

    assert await service.user_roles(user) == ["resident", "party_member", "staff"]
    assert await service.has_role(user, "resident", community.id)
    assert not await service.has_role(user, "resident", other.id)
    assert await service.has_role(user, "party_member", community.id)
    assert not await service.has_role(user, "party_member", other.id)
    assert await service.has_role(user, "party_member")
    assert not await service.has_role(user, "unit_member")
    assert await service.staff_community_ids(user) == [other.id]


async def test_staff_of_one_community_cannot_act_on_another(db):
    a = await make_community(slug="a")
    b = await make_community(slug="b")
    staff_a = await make_staff(a)
    resident = await make_user(community=a)

    assert await service.is_staff_of(staff_a, a.id)
    assert not await service.is_staff_of(staff_a, b.id)
    assert not await service.is_staff_of(staff_a, None)
    assert not await service.is_staff_of(resident, a.id)
    await service.require_staff_of(staff_a, a.id)
    with pytest.raises(Forbidden) as caught:
        await service.require_staff_of(staff_a, b.id)
    assert caught.value.code == "forbidden"
    with pytest.raises(Forbidden):
        await service.require_staff_of(resident, a.id)
    with pytest.raises(Forbidden):
        await service.require_street_admin(staff_a)


async def test_street_admin_is_staff_everywhere(db):
    a = await make_community()
    b = await make_community()
    admin = await make_street_admin()

    assert await service.is_staff_of(admin, a.id)
    assert await service.is_staff_of(admin, b.id)
    assert await service.is_staff_anywhere(admin)
    assert await service.staff_community_ids(admin) is None
    await service.require_street_admin(admin)


async def test_grant_rules(db):
    a = await make_community()
    b = await make_community()
    admin = await make_street_admin()
    staff_a = await make_staff(a)
    resident = await make_user(community=a)
    target = await make_user(community=a)

    # staff grant party_member and staff in their own community only
    grant = await service.grant_role(
        actor=staff_a, user_id=target.id, role="party_member", community_id=a.id
    )
    assert (grant.role, grant.community_id, grant.granted_by_id) == (
        "party_member",
        a.id,
        staff_a.id,
    )
    with pytest.raises(Forbidden):
        await service.grant_role(
            actor=staff_a, user_id=target.id, role="party_member", community_id=b.id
        )
    with pytest.raises(Forbidden):
        await service.grant_role(
            actor=staff_a, user_id=target.id, role="street_admin", community_id=None
        )
    with pytest.raises(Forbidden):
        await service.grant_role(actor=resident, user_id=target.id, role="staff", community_id=a.id)
    with pytest.raises(Forbidden):
        await service.revoke_role(
            actor=resident, user_id=target.id, role="party_member", community_id=a.id
        )

    # a street admin grants anything anywhere
    await service.grant_role(actor=admin, user_id=target.id, role="staff", community_id=b.id)
    await service.grant_role(actor=admin, user_id=target.id, role="street_admin", community_id=None)
    assert await service.user_roles(target) == [
        "resident",
        "party_member",
        "staff",
        "street_admin",
    ]

    with pytest.raises(Invalid):
        await service.grant_role(actor=None, user_id=target.id, role="resident", community_id=None)
    with pytest.raises(NotFound):
        await service.grant_role(actor=None, user_id=999999, role="street_admin", community_id=None)


async def test_grant_is_idempotent_inside_a_callers_transaction(db):
    community = await make_community()
    member = await make_user(community=community)

    # The party domain grants party_member inside its approval transaction.
    async with in_transaction():
        first = await service.grant_role(
            actor=None, user_id=member.id, role="party_member", community_id=community.id
        )
        second = await service.grant_role(
            actor=None, user_id=member.id, role="party_member", community_id=community.id
        )
        await User.filter(id=member.id).update(nickname="已报到党员")

    assert first.id == second.id
    assert await RoleGrant.filter(user_id=member.id).count() == 1
    assert (await User.get(id=member.id)).nickname == "已报到党员"


async def test_revoke_role(db):
    community = await make_community()
    staff = await make_staff(community)

    assert await service.revoke_role(
        actor=None, user_id=staff.id, role="staff", community_id=community.id
    )
    assert not await service.revoke_role(
        actor=None, user_id=staff.id, role="staff", community_id=community.id
    )
    assert not await service.is_staff_of(staff, community.id)
