from tortoise import fields
from tortoise.models import Model

TEMPLATE_KEYS = ("notice", "booking", "reminder", "wish", "reward")
# WeChat lets a user accept a template many times in a row, each acceptance one message.
MAX_CONSENTS_PER_CALL = 50


class SubscriptionConsent(Model):
    """Mini-program subscribe-message consents left: each one allows exactly one message."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="consents")
    template_key = fields.CharField(max_length=32)
    remaining = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "subscription_consent"
        unique_together = (("user", "template_key"),)


class DeliveryRefusal(Model):
    """WeChat said the user refused (43101): never try that template on that channel again."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="refusals")
    channel = fields.CharField(max_length=32)
    template_key = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "delivery_refusal"
        unique_together = (("user", "channel", "template_key"),)


class SubscriptionHold(Model):
    """A consent taken for one outbox message: a retry of that message (after a crash or a
    lost lease) uses it again instead of taking another, and a failed send gives it back."""

    id = fields.BigIntField(primary_key=True)
    outbox_id = fields.BigIntField(unique=True)
    user = fields.ForeignKeyField("linli.User", related_name="consent_holds")
    template_key = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "subscription_hold"


AUDIENCES = ("all", "residents", "party_members", "workers", "unit_members")
# scheduled: publish_at is later. published: readable, fanned out by the bot. cancelled: by staff
# before publish_at.
NOTICE_STATUSES = ("scheduled", "published", "cancelled")


class Notice(Model):
    """A notice staff publish to a community (or the whole street) and an audience in it.

    The bot turns it into one outbox row per recipient, in batches: `fanout_cursor` is the
    last user id done, moved by a guarded UPDATE in the same transaction as the batch's rows,
    so a crashed or parallel bot neither skips nor repeats anyone.
    """

    id = fields.BigIntField(primary_key=True)
    street = fields.ForeignKeyField("linli.Street", related_name="notices")
    # NULL: street-wide.
    community = fields.ForeignKeyField("linli.Community", related_name="notices", null=True)
    title = fields.CharField(max_length=64)
    body = fields.TextField()
    # An H5 path (/h5/activities/3) or an https URL the notice points to.
    link = fields.CharField(max_length=255, default="")
    audience = fields.CharField(max_length=16, default="all")
    building_ids = fields.JSONField(default=list)
    unit_ids = fields.JSONField(default=list)
    # Only people booked on this activity.
    activity_id = fields.BigIntField(null=True)
    status = fields.CharField(max_length=16, default="published")
    publish_at = fields.DatetimeField()
    created_by = fields.ForeignKeyField("linli.User", related_name="notices_created")
    created_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)
    fanout_cursor = fields.BigIntField(default=0)
    fanout_count = fields.IntField(default=0)
    fanout_done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notice"
        indexes = (("status", "publish_at"), ("community_id", "publish_at"))
