from tortoise import fields
from tortoise.models import Model

ROLES = ("resident", "party_member", "unit_member", "staff", "street_admin")
# Roles held by grant. The rest follow from the profile: community -> resident,
# unit -> unit_member.
GRANTED_ROLES = ("party_member", "staff", "street_admin")


class User(Model):
    id = fields.BigIntField(primary_key=True)
    nickname = fields.CharField(max_length=64, default="")
    # Phone numbers are personal data: encrypted at rest, found through a keyed hash.
    phone_encrypted = fields.TextField(null=True)
    phone_index = fields.CharField(max_length=64, null=True, db_index=True)
    community = fields.ForeignKeyField("linli.Community", related_name="residents", null=True)
    building = fields.ForeignKeyField("linli.Building", related_name="workers", null=True)
    unit = fields.ForeignKeyField("linli.Unit", related_name="members", null=True)
    # Changed only by backend.points.ledger with guarded statements.
    points_balance = fields.IntField(default=0)
    persona = fields.CharField(max_length=32, null=True, unique=True)  # demo personas only
    # Unique so two first logins with the same unionid (mini-program and official account
    # at once) cannot create two users: the loser of the insert race re-reads the winner.
    unionid = fields.CharField(max_length=128, null=True, unique=True)
    # Carried in every token and cookie; raised by logout, 注销 and a role revoke so every
    # token issued before stops working at once.
    token_version = fields.IntField(default=0)
    # Set when the person closed their account (注销): personal data is gone, history stays.
    erased_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"


class WechatIdentity(Model):
    """One WeChat identity (mini-program or official account) of a user."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="identities")
    kind = fields.CharField(max_length=16)  # miniprogram | official_account
    app_id = fields.CharField(max_length=64)
    openid = fields.CharField(max_length=128)
    unionid = fields.CharField(max_length=128, null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wechat_identity"
        unique_together = (("app_id", "openid"),)
        # The bot looks up each recipient's identities per app when it fans a notice out.
        indexes = (("user_id", "app_id"),)


class RoleGrant(Model):
    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="grants")
    role = fields.CharField(max_length=32)
    community = fields.ForeignKeyField("linli.Community", related_name="grants", null=True)
    # "street" or "c<community id>": NULLs are distinct in a unique key, so scope is spelled out.
    scope_key = fields.CharField(max_length=32)
    granted_by = fields.ForeignKeyField("linli.User", related_name="grants_given", null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "role_grant"
        unique_together = (("user", "role", "scope_key"),)
