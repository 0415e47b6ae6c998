from tortoise import fields
from tortoise.models import Model

CATEGORIES = ("午间一小时", "文化", "健康", "助老", "亲子", "志愿", "党建", "其他")
AUDIENCES = ("resident", "party_member", "worker")
# Booking statuses: entered (a draw-mode entry waiting for the draw), confirmed, waitlisted,
# cancelled, not_drawn (the draw left no place for it), attended, no_show. These hold the
# person's one place in the activity (live_key set):
LIVE_STATUSES = ("entered", "confirmed", "waitlisted", "attended", "no_show")
# and these may still be cancelled by the booker.
CANCELLABLE_STATUSES = ("entered", "confirmed", "waitlisted")


class Activity(Model):
    """A community activity with seats, a waitlist and a booking window.

    `booked` and `waitlisted` change only through guarded UPDATEs in bookings.py and draws.py
    (booked <= capacity and waitlisted <= waitlist_capacity hold in every committed state).
    `waitlist_issued` only grows: it hands out waitlist tickets in promotion order.
    """

    id = fields.BigIntField(primary_key=True)
    community = fields.ForeignKeyField("linli.Community", related_name="activities")
    title = fields.CharField(max_length=64)
    category = fields.CharField(max_length=16, db_index=True)
    description = fields.TextField(default="")
    location = fields.CharField(max_length=128, default="")
    starts_at = fields.DatetimeField(db_index=True)
    ends_at = fields.DatetimeField()
    booking_opens_at = fields.DatetimeField()
    booking_closes_at = fields.DatetimeField()
    cancel_deadline = fields.DatetimeField()
    capacity = fields.IntField()
    waitlist_capacity = fields.IntField(default=0)
    booked = fields.IntField(default=0)
    waitlisted = fields.IntField(default=0)
    waitlist_issued = fields.IntField(default=0)
    # Draw mode: live entries, changed under the row lock so no entry slips past the draw.
    entries = fields.IntField(default=0)
    for_residents = fields.BooleanField(default=True)
    for_party_members = fields.BooleanField(default=False)
    for_workers = fields.BooleanField(default=False)
    # Audience limits, read with the row (none listed: any building, the own community).
    # The buildings are also kept as ActivityBuilding rows, for the "my building" filter.
    building_ids = fields.JSONField(default=list)
    community_ids = fields.JSONField(default=list)
    points = fields.IntField(default=0)
    # Staff mark a class they know books out: repeat no-shows may not take its places.
    high_demand = fields.BooleanField(default=False)
    mode = fields.CharField(max_length=16, default="first_come")
    # Draw mode: the hash is public from the start, the seed only after the draw.
    draw_seed = fields.CharField(max_length=64, null=True)
    draw_seed_hash = fields.CharField(max_length=64, null=True)
    drawn_at = fields.DatetimeField(null=True)
    status = fields.CharField(max_length=16, default="published", db_index=True)
    cancel_reason = fields.CharField(max_length=200, default="")
    # Bumped when time or place changes, so each change notifies bookers once.
    revision = fields.IntField(default=1)
    no_shows_marked_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "linli.User", related_name="activities_created", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "activity"


class ActivityBuilding(Model):
    """An office building whose workers may book the activity (for listing by building)."""

    id = fields.BigIntField(primary_key=True)
    activity = fields.ForeignKeyField("linli.Activity", related_name="building_links")
    building = fields.ForeignKeyField("linli.Building", related_name="activity_links")

    class Meta:
        table = "activity_building"
        unique_together = (("activity", "building"),)


class Booking(Model):
    """One person's place in an activity: seat, waitlist ticket or draw entry.

    `live_key` is "<activity>:<user>" while the booking is live and NULL once cancelled:
    NULLs are distinct in a unique index, so any number of cancelled rows may sit beside
    the one live booking the unique key allows.
    """

    id = fields.BigIntField(primary_key=True)
    activity = fields.ForeignKeyField("linli.Activity", related_name="bookings")
    user = fields.ForeignKeyField("linli.User", related_name="bookings")
    status = fields.CharField(max_length=16)
    live_key = fields.CharField(max_length=48, null=True, unique=True)
    # Waitlist ticket from activity.waitlist_issued: promotion goes in ticket order.
    waitlist_ticket = fields.IntField(null=True)
    draw_rank = fields.IntField(null=True)
    # The per-person monthly counter this booking holds ("<category>|<YYYY-MM>"), if any.
    quota_key = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    checked_in_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True)
    excused_at = fields.DatetimeField(null=True)
    excused_by = fields.ForeignKeyField(
        "linli.User", related_name="bookings_excused", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "booking"
        unique_together = (("activity", "waitlist_ticket"),)
        indexes = (("activity_id", "status"), ("user_id", "status"))


class BookingQuota(Model):
    """Active bookings a person holds in one category and calendar month (guarded counter)."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="booking_quotas")
    key = fields.CharField(max_length=40)
    used = fields.IntField(default=0)

    class Meta:
        table = "booking_quota"
        unique_together = (("user", "key"),)
