"""Micro-wishes (微心愿) with their history, and the two-way board (双向认领).

Statuses change only through backend.wishes.service and backend.wishes.board, each by one
guarded UPDATE whose WHERE clause names the status it leaves.
"""

from tortoise import fields
from tortoise.models import Model

# pending_review → open | rejected; open → claimed → fulfilled → closed; pending_review or
# open → withdrawn (the poster); anything not final → removed (staff close an abusive wish).
WISH_STATUSES = (
    "pending_review",
    "open",
    "rejected",
    "claimed",
    "fulfilled",
    "closed",
    "withdrawn",
    "removed",
)
# What the public may see: reviewed and approved wishes.
PUBLIC_STATUSES = ("open", "claimed", "fulfilled", "closed")
WISH_CATEGORIES = ("生活帮扶", "助老助残", "儿童心愿", "医疗健康", "学习教育", "其他")

BOARD_KINDS = ("need", "resource")
BOARD_CATEGORIES = ("助老服务", "环境整治", "健康医疗", "法律咨询", "文化教育", "场地设施", "其他")
# pending (claimed, waiting for the publisher) → confirmed → done; pending → declined
# (publisher); pending or confirmed → cancelled (claimant).
BOARD_CLAIM_STATUSES = ("pending", "confirmed", "done", "declined", "cancelled")
LIVE_BOARD_CLAIM_STATUSES = ("pending", "confirmed", "done")


class Wish(Model):
    """A resident's small concrete wish, public only after staff review."""

    id = fields.BigIntField(primary_key=True)
    community = fields.ForeignKeyField("linli.Community", related_name="wishes")
    poster = fields.ForeignKeyField("linli.User", related_name="wishes_posted")
    title = fields.CharField(max_length=64)
    description = fields.TextField()
    category = fields.CharField(max_length=16)
    needed_by = fields.DateField(null=True)
    # Where to help: shown to the claimer and staff only, never on the public board.
    address = fields.CharField(max_length=128, default="")
    # direct: the poster's own contact goes to the claimer the poster accepts;
    # community: the poster chose 由社区联系, so the claimer only ever gets the community's.
    contact_via = fields.CharField(max_length=16, default="direct")
    status = fields.CharField(max_length=16, default="pending_review", db_index=True)
    review_reason = fields.CharField(max_length=255, default="")
    reviewed_by = fields.ForeignKeyField("linli.User", related_name="wishes_reviewed", null=True)
    reviewed_at = fields.DatetimeField(null=True)
    claimer = fields.ForeignKeyField("linli.User", related_name="wishes_claimed", null=True)
    # Set when a unit member claimed on behalf of their unit: the unit gets the credit.
    claimer_unit = fields.ForeignKeyField("linli.Unit", related_name="wishes_claimed", null=True)
    claimed_at = fields.DatetimeField(null=True)
    # When the poster (or staff for them) accepted the claimer and so shared the contact.
    accepted_at = fields.DatetimeField(null=True)
    # A claim still open at this moment is released by the bot's scheduler.
    claim_due_at = fields.DatetimeField(null=True, db_index=True)
    fulfil_note = fields.TextField(default="")
    fulfilled_at = fields.DatetimeField(null=True)
    rating = fields.SmallIntField(null=True)
    thanks = fields.CharField(max_length=255, default="")
    closed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "wish"
        indexes = (("community_id", "status"),)


class WishEvent(Model):
    """One transition of a wish (who, from, to, why), shown to the poster and staff."""

    id = fields.BigIntField(primary_key=True)
    wish = fields.ForeignKeyField("linli.Wish", related_name="events")
    action = fields.CharField(max_length=24)
    from_status = fields.CharField(max_length=16, null=True)
    to_status = fields.CharField(max_length=16)
    actor = fields.ForeignKeyField("linli.User", related_name="wish_events", null=True)
    # poster | claimer | staff | system: the role the actor acted in, kept for the history.
    actor_role = fields.CharField(max_length=16)
    note = fields.CharField(max_length=512, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "wish_event"
        ordering = ("id",)


class WishPhoto(Model):
    """The optional photo a claimer adds when fulfilling a wish (seen by poster and staff)."""

    id = fields.BigIntField(primary_key=True)
    wish = fields.OneToOneField("linli.Wish", related_name="photo")
    content_type = fields.CharField(max_length=32)
    content = fields.BinaryField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "wish_photo"


class WishClaimer(Model):
    """How many claims a person holds open, moved by guarded statements in the claim's
    transaction so the per-person limit holds across processes."""

    id = fields.BigIntField(primary_key=True)
    user = fields.OneToOneField("linli.User", related_name="wish_claimer")
    open_claims = fields.IntField(default=0)
    # The last release: a new claim waits out the cooldown (claim → release churn).
    released_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wish_claimer"


class BoardItem(Model):
    """A community's need (需求清单) or a unit's resource (资源清单) with a claim quantity."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=16)
    # A need belongs to a community, a resource to a unit (community is then its home, if any).
    community = fields.ForeignKeyField("linli.Community", related_name="board_items", null=True)
    unit = fields.ForeignKeyField("linli.Unit", related_name="board_items", null=True)
    title = fields.CharField(max_length=64)
    description = fields.TextField()
    category = fields.CharField(max_length=16)
    quantity = fields.IntField()
    # Live claims (pending, confirmed, done), never above quantity.
    claimed = fields.IntField(default=0)
    status = fields.CharField(max_length=16, default="open", db_index=True)  # open | closed
    created_by = fields.ForeignKeyField("linli.User", related_name="board_items_created")
    created_at = fields.DatetimeField()

    class Meta:
        table = "board_item"
        indexes = (("kind", "status"),)


class BoardClaim(Model):
    """A unit claiming a need, or a community claiming a resource."""

    id = fields.BigIntField(primary_key=True)
    item = fields.ForeignKeyField("linli.BoardItem", related_name="claims")
    unit = fields.ForeignKeyField("linli.Unit", related_name="board_claims", null=True)
    community = fields.ForeignKeyField("linli.Community", related_name="board_claims", null=True)
    # "u<unit id>" or "c<community id>" while the claim is live, NULL after: one live claim
    # per claimant and item (NULLs are distinct in a unique key).
    live_key = fields.CharField(max_length=32, null=True)
    claimed_by = fields.ForeignKeyField("linli.User", related_name="board_claims_made")
    status = fields.CharField(max_length=16, default="pending")
    progress_note = fields.CharField(max_length=512, default="")
    confirmed_at = fields.DatetimeField(null=True)
    publisher_done_at = fields.DatetimeField(null=True)
    claimant_done_at = fields.DatetimeField(null=True)
    done_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "board_claim"
        unique_together = (("item", "live_key"),)


class BoardEvent(Model):
    """One step of a board claim (claimed, confirmed, progress, done …)."""

    id = fields.BigIntField(primary_key=True)
    claim = fields.ForeignKeyField("linli.BoardClaim", related_name="events")
    action = fields.CharField(max_length=24)
    actor = fields.ForeignKeyField("linli.User", related_name="board_events", null=True)
    note = fields.CharField(max_length=512, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "board_event"
        ordering = ("id",)
