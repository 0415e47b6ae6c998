"""Points: the append-only ledger, expiring batches, earning rules, rewards and redemptions.

Every number that a rule protects (a balance, a batch's remainder, a cap tally, a reward's
stock, a user's live redemptions of a reward) is changed only by guarded statements in
backend.points.ledger, backend.points.rules and backend.points.rewards.
"""

from datetime import datetime

from tortoise import fields
from tortoise.models import Model


class PointsLedgerEntry(Model):
    """Append-only: every balance change is one row, and a (user, source) pays at most once."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="ledger")
    delta = fields.IntField()
    balance_after = fields.IntField()
    source_type = fields.CharField(max_length=32)
    source_id = fields.CharField(max_length=64)
    reason = fields.CharField(max_length=255, default="")
    actor = fields.ForeignKeyField("linli.User", related_name="ledger_actions", null=True)
    # Where the user lived and worked when the row was written: leaderboards and exports
    # report history as it was, not as the user's profile says today.
    community_id = fields.IntField(null=True)
    unit_id = fields.IntField(null=True)
    # The earning rule version that priced an award (null for plain amounts).
    rule = fields.ForeignKeyField(
        "linli.EarningRule", related_name="entries", null=True, on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_ledger"
        unique_together = (("user", "source_type", "source_id"),)
        indexes = (("user_id", "id"), ("community_id", "created_at"), ("unit_id", "created_at"))
        ordering = ("-id",)


class PointsBatch(Model):
    """Points a user earned that expire at the same moment, with what is left of them."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="points_batches")
    expires_at = fields.DatetimeField(db_index=True)
    earned = fields.IntField(default=0)
    remaining = fields.IntField(default=0)
    expired = fields.IntField(default=0)
    # The "points expiring next month" notice went out (each batch is announced once).
    expiry_notified = fields.BooleanField(default=False)

    class Meta:
        table = "points_batch"
        unique_together = (("user", "expires_at"),)


class PointsBatchUse(Model):
    """How much of a batch one debit took, so a refund puts the points back where they were."""

    id = fields.BigIntField(primary_key=True)
    entry = fields.ForeignKeyField("linli.PointsLedgerEntry", related_name="batch_uses")
    batch = fields.ForeignKeyField("linli.PointsBatch", related_name="uses")
    amount = fields.IntField()

    class Meta:
        table = "points_batch_use"
        unique_together = (("entry", "batch"),)


class EarningRule(Model):
    """One version of the rule for an event type, in force from effective_from to the next one.

    Versions are only added (or withdrawn before they start), never edited, so an award
    always keeps the price it was paid at.
    """

    id = fields.BigIntField(primary_key=True)
    event_type = fields.CharField(max_length=32)
    points = fields.IntField()
    multiplier_percent = fields.IntField(default=100)
    daily_cap = fields.IntField(null=True)
    monthly_cap = fields.IntField(null=True)
    effective_from = fields.DatetimeField()
    note = fields.CharField(max_length=200, default="")
    created_by = fields.ForeignKeyField("linli.User", related_name="points_rules", null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_rule"
        unique_together = (("event_type", "effective_from"),)


class EarningTally(Model):
    """Points a user earned for one event type in one local day or month, for the rule caps."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="points_tallies")
    event_type = fields.CharField(max_length=32)
    period = fields.CharField(max_length=10)  # "2025-03-01" (a day) or "2025-03" (a month)
    earned = fields.IntField(default=0)

    class Meta:
        table = "points_tally"
        unique_together = (("user", "event_type", "period"),)


class Reward(Model):
    """A reward a community offers for points, with the stock left to redeem."""

    id = fields.BigIntField(primary_key=True)
    community = fields.ForeignKeyField("linli.Community", related_name="rewards")
    title = fields.CharField(max_length=40)
    description = fields.TextField(default="")
    image_url = fields.CharField(max_length=500, default="")
    cost = fields.IntField()
    stock = fields.IntField()
    per_user_limit = fields.IntField(default=1)
    on_sale_from = fields.DatetimeField(null=True)
    on_sale_until = fields.DatetimeField(null=True)
    pickup_place = fields.CharField(max_length=100, default="")
    pickup_days = fields.IntField()
    active = fields.BooleanField(default=True)
    created_by = fields.ForeignKeyField("linli.User", related_name="rewards_created", null=True)
    created_at = fields.DatetimeField()
    # Not a column: when the uploaded picture last changed (None without one), filled in by
    # backend.points.rewards on the rewards it hands out, so lists never load the bytes.
    picture_at: datetime | None = None

    class Meta:
        table = "points_reward"
        indexes = (("community_id", "active"),)


class RewardPicture(Model):
    """The picture staff uploaded for a reward, shown on the shop (replaced by a new upload)."""

    id = fields.BigIntField(primary_key=True)
    reward = fields.OneToOneField("linli.Reward", related_name="picture")
    # Taken from the file's first bytes, never from what the uploader declared.
    content_type = fields.CharField(max_length=32)
    content = fields.BinaryField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "points_reward_picture"


class RewardHolding(Model):
    """How many live redemptions (waiting or picked up) a user holds of one reward."""

    id = fields.BigIntField(primary_key=True)
    reward = fields.ForeignKeyField("linli.Reward", related_name="holdings")
    user = fields.ForeignKeyField("linli.User", related_name="reward_holdings")
    count = fields.IntField(default=0)

    class Meta:
        table = "points_reward_holding"
        unique_together = (("reward", "user"),)


class Redemption(Model):
    """A reward bought with points, waiting for pickup until staff verify its code."""

    id = fields.BigIntField(primary_key=True)
    reward = fields.ForeignKeyField("linli.Reward", related_name="redemptions")
    user = fields.ForeignKeyField("linli.User", related_name="redemptions")
    community_id = fields.IntField()
    cost = fields.IntField()
    pickup_code = fields.CharField(max_length=16, unique=True)
    # pending_pickup → fulfilled (verified) | cancelled (by staff) | expired (not picked up)
    status = fields.CharField(max_length=16, default="pending_pickup")
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    reminded = fields.BooleanField(default=False)
    fulfilled_at = fields.DatetimeField(null=True)
    fulfilled_by = fields.ForeignKeyField(
        "linli.User", related_name="redemptions_verified", null=True
    )
    closed_at = fields.DatetimeField(null=True)
    closed_by = fields.ForeignKeyField("linli.User", related_name="redemptions_closed", null=True)
    close_reason = fields.CharField(max_length=200, default="")

    class Meta:
        table = "points_redemption"
        indexes = (("user_id", "id"), ("community_id", "status"), ("status", "expires_at"))


class PointsPreference(Model):
    """A user's points settings: whether they appear by name on leaderboards."""

    id = fields.BigIntField(primary_key=True)
    user = fields.OneToOneField("linli.User", related_name="points_preference")
    leaderboard_opt_in = fields.BooleanField(default=False)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "points_preference"
