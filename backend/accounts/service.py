"""Accounts: WeChat login, tokens, profiles, roles, and the authorization checks of every domain."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from backend.accounts import wechat
from backend.accounts.exceptions import WeChatUnavailableError
from backend.accounts.models import GRANTED_ROLES, ROLES, RoleGrant, User, WechatIdentity
from backend.accounts.schemas import NICKNAME_MAX
from backend.accounts.views import Grant, Profile
from backend.core.config import Settings, get_settings
from backend.core.db import close_db, init_db
from backend.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
)
from backend.core.ids import MAX_ORG_ID, may_exist
from backend.core.outbox import enqueue
from backend.core.security import (
    blind_index,
    decrypt_field,
    encrypt_field,
    mask_phone,
    sign_token,
    verify_token,
)
from backend.core.text import clean_text, normalise_phone
from backend.orgs.models import Building, Community, Unit

log = logging.getLogger("linli.accounts")

SESSION_COOKIE = "linli_session"
TokenKind = Literal["access", "session"]

KIND_MINIPROGRAM = "miniprogram"
KIND_OFFICIAL_ACCOUNT = "official_account"

# Roles a grant is scoped to one community by; street_admin is street-wide.
COMMUNITY_SCOPED_ROLES = ("party_member", "staff")
CLI_ROLES = ("staff", "street_admin")
ROLE_NAMES = {
    "resident": "居民",
    "party_member": "在职党员",
    "unit_member": "驻区单位成员",
    "staff": "社区工作人员",
    "street_admin": "街道管理员",
}
PERSONAS_DEV_ONLY = "演示身份登录仅在开发环境（LINLI_ENV=dev）可用"

_UNSET: Any = object()


# --- tokens ---


def issue_access_token(*, user_id: int, token_version: int = 0) -> str:
    """A signed bearer token for the mini-program, valid `token_ttl_seconds`."""
    return sign_token(
        {"uid": user_id, "tv": token_version},
        ttl_seconds=get_settings().token_ttl_seconds,
        salt="access",
    )


def issue_session_token(*, user_id: int, token_version: int = 0) -> str:
    """A signed H5 session cookie value, valid `session_ttl_seconds`."""
    return sign_token(
        {"uid": user_id, "tv": token_version},
        ttl_seconds=get_settings().session_ttl_seconds,
        salt="session",
    )


def _expired() -> Unauthenticated:
    return Unauthenticated("登录已失效，请重新登录")


def read_token(*, token: str, kind: TokenKind) -> tuple[int, int]:
    """(user id, token version) of a token of `kind`, from its signature alone (no database
    read); Unauthenticated when forged or expired. Tokens signed before versions existed
    carry none and count as version 0."""
    payload = verify_token(token, salt=kind)
    uid = payload.get("uid") if payload else None
    version = payload.get("tv", 0) if payload else None
    if not isinstance(uid, int) or not isinstance(version, int) or isinstance(version, bool):
        raise _expired()
    return uid, version


def token_user_id(*, token: str, kind: TokenKind) -> int:
    """The user id a token of `kind` was issued to, from its signature alone (no database
    read); Unauthenticated when forged or expired."""
    return read_token(token=token, kind=kind)[0]


def check_token_version(user: User | None, token_version: int) -> User:
    """`user` when a token of `token_version` still speaks for them; Unauthenticated when
    the user is gone, closed their account, or logged out since the token was issued."""
    if user is None or user.erased_at is not None or user.token_version != token_version:
        raise _expired()
    return user


class Caller(int):
    """The caller's user id, carrying the token version it was signed with.

    `deps.CallerId` gives one to the booking route, which must not read the database before
    the Redis sold-out gate answers. An int, so the route hands it on as the user id
    unchanged; the booking service reads the user row right after the gate anyway and calls
    `check_caller(user, user_id)` there, so a logged-out token is refused at no extra read.
    A full class still answers sold_out to a stale token first: the public seat count says
    as much, and nothing is booked.
    """

    token_version: int

    def __new__(cls, user_id: int, token_version: int) -> Caller:
        caller = super().__new__(cls, user_id)
        caller.token_version = token_version
        return caller


def check_caller(user: User | None, user_id: int) -> User:
    """`user` when the caller may act as them: a `Caller` is held to its token version, a
    plain id was authenticated by whoever passed it."""
    if isinstance(user_id, Caller):
        return check_token_version(user, user_id.token_version)
    if user is None:
        raise _expired()
    return user


async def authenticate(*, token: str, kind: TokenKind) -> User:
    """The user a token of `kind` was issued to; Unauthenticated when forged, expired,
    unknown, or older than the user's last logout, role revoke or account closure."""
    uid, version = read_token(token=token, kind=kind)
    return check_token_version(await User.get_or_none(id=uid), version)


async def end_sessions_in_tx(*, user_id: int) -> None:
    """Raise the user's token version: every bearer token and cookie issued before stops
    working at once (one guarded increment, so concurrent ends never lose one)."""
    await User.filter(id=user_id).update(token_version=F("token_version") + 1)


async def logout(*, user: User) -> None:
    """End every session and token of `user` (every device, H5 and mini-program)."""
    async with in_transaction():
        await end_sessions_in_tx(user_id=user.id)


# --- WeChat login ---


def _login_failed(exc: wechat.WeChatLoginError) -> DomainError:
    if isinstance(exc, wechat.WeChatUnavailable):
        return WeChatUnavailableError()
    return Unauthenticated("微信登录失败，请重新进入后再试", code="wechat_login_failed")


async def _welcome(user: User) -> None:
    await enqueue(
        template_key="notice",
        context={
            "title": "欢迎加入邻里",
            "body": "欢迎来到邻里！在这里可以报名社区活动、认领微心愿、参与志愿服务，"
            "还能用积分兑换礼品。",
            "url": "/h5/",
        },
        dedupe_key=f"welcome:{user.id}",
        user_id=user.id,
    )


async def _attach_unionid(identity: WechatIdentity, unionid: str) -> None:
    await WechatIdentity.filter(id=identity.id, unionid=None).update(unionid=unionid)
    try:
        async with in_transaction():
            await User.filter(id=identity.user_id, unionid=None).update(unionid=unionid)
    except IntegrityError:
        # Another user already holds this unionid: merging two accounts is an operator job.
        log.warning("unionid already belongs to another user", extra={"user_id": identity.user_id})


async def _user_for_identity(*, kind: str, app_id: str, info: wechat.WeChatIdentityInfo) -> User:
    """Find or create the user of (app_id, openid), merging identities that share a unionid."""
    # Each round either finds the identity or tries to create it; a unique key refuses the
    # loser of a concurrent first login, which then finds what the winner created.
    for _ in range(3):
        identity = await WechatIdentity.get_or_none(app_id=app_id, openid=info.openid)
        if identity is not None:
            if info.unionid and identity.unionid is None:
                await _attach_unionid(identity, info.unionid)
            return await User.get(id=identity.user_id)
        try:
            async with in_transaction():
                user = await User.get_or_none(unionid=info.unionid) if info.unionid else None
                created = user is None
                if user is None:
                    user = await User.create(nickname="微信用户", unionid=info.unionid)
                await WechatIdentity.create(
                    user=user, kind=kind, app_id=app_id, openid=info.openid, unionid=info.unionid
                )
                if created:
                    await _welcome(user)
            return user
        except IntegrityError:
            continue
    raise Conflict("登录繁忙，请稍后再试", code="login_conflict")


async def login_miniprogram(*, code: str) -> tuple[str, int, User]:
    """A wx.login code → (bearer token, seconds valid, user); a new user is welcomed once."""
    settings = get_settings()
    try:
        info = await asyncio.to_thread(wechat.code_to_session, settings, code)
    except wechat.WeChatLoginError as exc:
        raise _login_failed(exc) from exc
    user = await _user_for_identity(kind=KIND_MINIPROGRAM, app_id=settings.mp_appid, info=info)
    return (
        issue_access_token(user_id=user.id, token_version=user.token_version),
        settings.token_ttl_seconds,
        user,
    )


def oauth_authorize_url(*, redirect_uri: str, state: str) -> str:
    """The official account's snsapi_base authorization URL (a browser redirect to WeChat)."""
    return wechat.oauth_client(get_settings(), redirect_uri=redirect_uri, state=state).authorize_url


async def login_official_account(*, code: str) -> User:
    """The user of an official-account OAuth code (one per unionid); a new user is welcomed once."""
    settings = get_settings()
    try:
        info = await asyncio.to_thread(wechat.oauth_code_to_identity, settings, code)
    except wechat.WeChatLoginError as exc:
        raise _login_failed(exc) from exc
    return await _user_for_identity(kind=KIND_OFFICIAL_ACCOUNT, app_id=settings.oa_appid, info=info)


# --- demo personas ---


def personas_enabled() -> bool:
    """Whether demo personas may be used (never in production)."""
    return get_settings().env != "prod"


async def list_personas() -> list[User]:
    """The demo persona users, in seed order; refused in production."""
    if not personas_enabled():
        raise Forbidden(PERSONAS_DEV_ONLY)
    return await User.filter(persona__isnull=False).order_by("id")


async def login_persona(*, persona: str) -> User:
    """The demo user for `persona`; refused in production, NotFound when there is none."""
    if not personas_enabled():
        raise Forbidden(PERSONAS_DEV_ONLY)
    user = await User.get_or_none(persona=persona)
    if user is None:
        raise NotFound("没有这个演示身份")
    return user


# --- profile ---


async def describe_user(*, user: User) -> Profile:
    """A user as they see themselves: phone masked, roles resolved."""
    grants = await RoleGrant.filter(user_id=user.id).order_by("id")
    return Profile(
        user=user,
        phone=mask_phone(decrypt_field(user.phone_encrypted)),
        roles=_roles(user, grants),
        grants=[Grant(role=g.role, community_id=g.community_id) for g in grants],
    )


async def update_profile(
    *,
    user: User,
    nickname: Any = _UNSET,
    phone: Any = _UNSET,
    community_id: Any = _UNSET,
    building_id: Any = _UNSET,
    unit_id: Any = _UNSET,
) -> User:
    """Change only the given fields; phone stored encrypted, ids must exist (else Invalid)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if nickname is not _UNSET:
        try:
            values["nickname"] = clean_text(
                nickname, field="nickname", label="昵称", min_length=1, max_length=NICKNAME_MAX
            )
        except Invalid as exc:
            errors.update(exc.fields or {})
    if phone is not _UNSET:
        if phone is None or not str(phone).strip():
            values["phone_encrypted"] = values["phone_index"] = None
        elif (number := normalise_phone(str(phone))) is None:
            errors["phone"] = "请输入 11 位大陆手机号"
        else:
            values["phone_encrypted"] = encrypt_field(number)
            values["phone_index"] = blind_index(number)
    for field, value, model, label in (
        ("community_id", community_id, Community, "社区"),
        ("building_id", building_id, Building, "楼宇"),
        ("unit_id", unit_id, Unit, "驻区单位"),
    ):
        if value is _UNSET:
            continue
        if value is not None and not (
            may_exist(value, MAX_ORG_ID) and await model.exists(id=value)
        ):
            errors[field] = f"{label}不存在"
        else:
            values[field] = value
    if errors:
        raise Invalid(fields=errors)
    if values:
        try:
            async with in_transaction():
                await User.filter(id=user.id).update(**values)
        except IntegrityError as exc:  # removed between the check and the write
            raise Invalid(fields={"body": "所选社区、楼宇或单位已不存在"}) from exc
    return await User.get(id=user.id)


# --- roles and authorization ---


def _roles(user: User, grants: list[RoleGrant]) -> list[str]:
    held = {g.role for g in grants}
    if user.community_id is not None:
        held.add("resident")
    if user.unit_id is not None:
        held.add("unit_member")
    return [role for role in ROLES if role in held]


async def user_roles(user: User) -> list[str]:
    """Every role the user holds anywhere, in ROLES order."""
    return _roles(user, await RoleGrant.filter(user_id=user.id))


async def has_role(user: User, role: str, community_id: int | None = None) -> bool:
    """Whether the user holds `role` (in `community_id` when given; street_admin is street-wide)."""
    if role == "resident":
        return user.community_id is not None and community_id in (None, user.community_id)
    if role == "unit_member":
        return user.unit_id is not None
    grants = RoleGrant.filter(user_id=user.id, role=role)
    if community_id is not None and role in COMMUNITY_SCOPED_ROLES:
        grants = grants.filter(community_id=community_id)
    return await grants.exists()


async def is_street_admin(user: User) -> bool:
    return await RoleGrant.exists(user_id=user.id, role="street_admin")


async def is_staff_of(user: User, community_id: int | None) -> bool:
    """Whether the user may act as staff of `community_id`: its staff, or a street admin."""
    scope = Q(role="street_admin")
    if community_id is not None:
        scope |= Q(role="staff", community_id=community_id)
    return await RoleGrant.filter(Q(user_id=user.id) & scope).exists()


async def is_staff_anywhere(user: User) -> bool:
    """Whether the user is staff of some community or a street admin."""
    return await RoleGrant.exists(user_id=user.id, role__in=("staff", "street_admin"))


async def staff_community_ids(user: User) -> list[int] | None:
    """Communities the user is staff of; None means all of them (street admin)."""
    if await is_street_admin(user):
        return None
    return (
        await RoleGrant.filter(user_id=user.id, role="staff")
        .order_by("community_id")
        .values_list("community_id", flat=True)
    )


async def require_staff_of(user: User, community_id: int | None) -> None:
    """Forbidden unless the user is staff of `community_id` or a street admin."""
    if not await is_staff_of(user, community_id):
        raise Forbidden("只有本社区的工作人员可以进行此操作")


async def require_street_admin(user: User) -> None:
    """Forbidden unless the user is a street admin."""
    if not await is_street_admin(user):
        raise Forbidden("只有街道管理员可以进行此操作")


def _scope_key(role: str, community_id: int | None) -> str:
    return "street" if role == "street_admin" else f"c{community_id}"


async def _check_grant(
    *, actor: User | None, user_id: int, role: str, community_id: int | None
) -> int | None:
    """Validate a grant/revoke request and that `actor` may make it; returns the community id."""
    if role not in GRANTED_ROLES:
        raise Invalid(fields={"role": "只能授予 party_member、staff 或 street_admin"})
    if role == "street_admin":
        if community_id is not None:
            raise Invalid(fields={"community_id": "街道管理员不属于某个社区，请不要填写"})
    elif community_id is None:
        raise Invalid(fields={"community_id": "该角色必须指定社区"})
    elif not (may_exist(community_id, MAX_ORG_ID) and await Community.exists(id=community_id)):
        raise Invalid(fields={"community_id": "社区不存在"})
    if not (may_exist(user_id) and await User.exists(id=user_id)):
        raise NotFound("用户不存在")
    if actor is None or await is_street_admin(actor):
        return community_id
    if role != "street_admin" and await has_role(actor, "staff", community_id):
        return community_id
    raise Forbidden("只有街道管理员或本社区工作人员可以调整此角色")


async def grant_role(
    *, actor: User | None, user_id: int, role: str, community_id: int | None
) -> RoleGrant:
    """Give `role` in `community_id` to a user once: granting again returns the same grant.

    `actor` None is the operator CLI. A street admin may grant anything; staff may grant
    staff and party_member of their own community only.
    """
    community_id = await _check_grant(
        actor=actor, user_id=user_id, role=role, community_id=community_id
    )
    scope_key = _scope_key(role, community_id)
    async with in_transaction():
        # ON CONFLICT DO NOTHING keeps a caller's surrounding PostgreSQL transaction usable.
        await RoleGrant.bulk_create(
            [
                RoleGrant(
                    user_id=user_id,
                    role=role,
                    community_id=community_id,
                    scope_key=scope_key,
                    granted_by_id=actor.id if actor else None,
                )
            ],
            ignore_conflicts=True,
        )
        return await RoleGrant.get(user_id=user_id, role=role, scope_key=scope_key)


async def revoke_role(
    *, actor: User | None, user_id: int, role: str, community_id: int | None
) -> bool:
    """Take `role` in `community_id` away; False when it was not held. Same rules as grant;
    a revoke by another person also ends the holder's sessions."""
    community_id = await _check_grant(
        actor=actor, user_id=user_id, role=role, community_id=community_id
    )
    async with in_transaction():
        deleted = await RoleGrant.filter(
            user_id=user_id, role=role, scope_key=_scope_key(role, community_id)
        ).delete()
        # A role taken away by someone else ends the person's sessions, so a device left
        # signed in cannot go on acting in the role. When the system ends a role the person
        # gave up themselves (actor None, e.g. leaving the party report-in) they stay signed in.
        if deleted and actor is not None:
            await end_sessions_in_tx(user_id=user_id)
    return deleted > 0


async def run_grant_cli(
    *, settings: Settings, openid: str, role: str, community_slug: str | None
) -> str:
    """`linli grant`: staff or street_admin for the user of `openid`; LookupError says why not."""
    if role not in CLI_ROLES:
        raise LookupError(f"`linli grant` 只能授予 {' 或 '.join(CLI_ROLES)}，不能授予 {role}")
    if role == "staff" and not community_slug:
        raise LookupError("授予社区工作人员时必须用 --community 指定社区")
    if role == "street_admin" and community_slug:
        raise LookupError("街道管理员不属于某个社区，请去掉 --community")
    await init_db(settings)
    try:
        identity = await WechatIdentity.filter(openid=openid).order_by("id").first()
        if identity is None:
            raise LookupError(f"找不到 openid 为 {openid} 的用户，请先让对方登录一次")
        community = None
        if community_slug:
            community = await Community.get_or_none(slug=community_slug)
            if community is None:
                raise LookupError(f"找不到标识为 {community_slug} 的社区")
        await grant_role(
            actor=None,
            user_id=identity.user_id,
            role=role,
            community_id=community.id if community else None,
        )
        user = await User.get(id=identity.user_id)
    finally:
        await close_db()
    where = f"（{community.name}）" if community else "（全街道）"
    return f"已授予用户 {user.nickname}（id {user.id}）{ROLE_NAMES[role]}角色{where}"
