from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("scope", fields.CharField(max_length=64)),
                ("key", fields.CharField(max_length=255)),
                ("request_hash", fields.CharField(max_length=64)),
                ("status", fields.CharField(default="running", max_length=16)),
                ("response_status", fields.IntField(null=True)),
                ("response_body", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "idempotency_record",
                "app": "linli",
                "unique_together": (("scope", "key"),),
                "pk_attr": "id",
                "table_description": "First response to a (user, Idempotency-Key), replayed for retries.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OutboxMessage",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("channel", fields.CharField(max_length=32)),
                ("template_key", fields.CharField(max_length=64)),
                ("user_id", fields.BigIntField(null=True, db_index=True)),
                ("recipient", fields.CharField(null=True, max_length=255)),
                (
                    "context",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("dedupe_key", fields.CharField(unique=True, max_length=255)),
                ("status", fields.CharField(default="pending", db_index=True, max_length=16)),
                ("attempts", fields.IntField(default=0)),
                (
                    "available_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "leased_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("lease_owner", fields.CharField(null=True, max_length=64)),
                ("last_error", fields.CharField(null=True, max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "outbox_message",
                "app": "linli",
                "indexes": [Index(fields=["status", "available_at"])],
                "pk_attr": "id",
                "table_description": "A message to send, written in the same transaction as the change it reports.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Street",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("slug", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=64)),
            ],
            options={"table": "street", "app": "linli", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Community",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "street",
                    fields.ForeignKeyField(
                        "linli.Street",
                        source_field="street_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="communities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("slug", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=64)),
                ("wecom_robot_key", fields.CharField(null=True, max_length=128)),
            ],
            options={"table": "community", "app": "linli", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Building",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "street",
                    fields.ForeignKeyField(
                        "linli.Street",
                        source_field="street_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="buildings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="buildings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("slug", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=64)),
                ("address", fields.CharField(default="", max_length=128)),
            ],
            options={
                "table": "building",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "An office building (楼宇) whose workers join the lunchtime classes.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Unit",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "street",
                    fields.ForeignKeyField(
                        "linli.Street",
                        source_field="street_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="units",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="units",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("slug", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=128)),
            ],
            options={
                "table": "unit",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "A resident unit (驻区单位): company, school or agency based in the street.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("nickname", fields.CharField(default="", max_length=64)),
                ("phone_encrypted", fields.TextField(null=True, unique=False)),
                ("phone_index", fields.CharField(null=True, db_index=True, max_length=64)),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="residents",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "building",
                    fields.ForeignKeyField(
                        "linli.Building",
                        source_field="building_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="workers",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "unit",
                    fields.ForeignKeyField(
                        "linli.Unit",
                        source_field="unit_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="members",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("points_balance", fields.IntField(default=0)),
                ("persona", fields.CharField(null=True, unique=True, max_length=32)),
                ("unionid", fields.CharField(null=True, unique=True, max_length=128)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "user", "app": "linli", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Activity",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="activities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=64)),
                ("category", fields.CharField(db_index=True, max_length=16)),
                ("description", fields.TextField(default="", unique=False)),
                ("location", fields.CharField(default="", max_length=128)),
                (
                    "starts_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("ends_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("booking_opens_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("booking_closes_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("cancel_deadline", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("capacity", fields.IntField()),
                ("waitlist_capacity", fields.IntField(default=0)),
                ("booked", fields.IntField(default=0)),
                ("waitlisted", fields.IntField(default=0)),
                ("waitlist_issued", fields.IntField(default=0)),
                ("entries", fields.IntField(default=0)),
                ("for_residents", fields.BooleanField(default=True)),
                ("for_party_members", fields.BooleanField(default=False)),
                ("for_workers", fields.BooleanField(default=False)),
                (
                    "building_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "community_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("points", fields.IntField(default=0)),
                ("high_demand", fields.BooleanField(default=False)),
                ("mode", fields.CharField(default="first_come", max_length=16)),
                ("draw_seed", fields.CharField(null=True, max_length=64)),
                ("draw_seed_hash", fields.CharField(null=True, max_length=64)),
                ("drawn_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("status", fields.CharField(default="published", db_index=True, max_length=16)),
                ("cancel_reason", fields.CharField(default="", max_length=200)),
                ("revision", fields.IntField(default=1)),
                (
                    "no_shows_marked_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="activities_created",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "activity",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "A community activity with seats, a waitlist and a booking window.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ActivityBuilding",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "activity",
                    fields.ForeignKeyField(
                        "linli.Activity",
                        source_field="activity_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="building_links",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "building",
                    fields.ForeignKeyField(
                        "linli.Building",
                        source_field="building_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="activity_links",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "activity_building",
                "app": "linli",
                "unique_together": (("activity", "building"),),
                "pk_attr": "id",
                "table_description": "An office building whose workers may book the activity (for listing by building).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BoardItem",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="board_items",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "unit",
                    fields.ForeignKeyField(
                        "linli.Unit",
                        source_field="unit_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="board_items",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=64)),
                ("description", fields.TextField(unique=False)),
                ("category", fields.CharField(max_length=16)),
                ("quantity", fields.IntField()),
                ("claimed", fields.IntField(default=0)),
                ("status", fields.CharField(default="open", db_index=True, max_length=16)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="board_items_created",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "board_item",
                "app": "linli",
                "indexes": [Index(fields=["kind", "status"])],
                "pk_attr": "id",
                "table_description": "A community's need (需求清单) or a unit's resource (资源清单) with a claim quantity.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BoardClaim",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "item",
                    fields.ForeignKeyField(
                        "linli.BoardItem",
                        source_field="item_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="claims",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "unit",
                    fields.ForeignKeyField(
                        "linli.Unit",
                        source_field="unit_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="board_claims",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="board_claims",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("live_key", fields.CharField(null=True, max_length=32)),
                (
                    "claimed_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="claimed_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="board_claims_made",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("status", fields.CharField(default="pending", max_length=16)),
                ("progress_note", fields.CharField(default="", max_length=512)),
                (
                    "confirmed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "publisher_done_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "claimant_done_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("done_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "board_claim",
                "app": "linli",
                "unique_together": (("item", "live_key"),),
                "pk_attr": "id",
                "table_description": "A unit claiming a need, or a community claiming a resource.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BoardEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "claim",
                    fields.ForeignKeyField(
                        "linli.BoardClaim",
                        source_field="claim_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("action", fields.CharField(max_length=24)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="board_events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("note", fields.CharField(default="", max_length=512)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "board_event",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "One step of a board claim (claimed, confirmed, progress, done …).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Booking",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "activity",
                    fields.ForeignKeyField(
                        "linli.Activity",
                        source_field="activity_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bookings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bookings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("status", fields.CharField(max_length=16)),
                ("live_key", fields.CharField(null=True, unique=True, max_length=48)),
                ("waitlist_ticket", fields.IntField(null=True)),
                ("draw_rank", fields.IntField(null=True)),
                ("quota_key", fields.CharField(null=True, max_length=40)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "confirmed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "cancelled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "checked_in_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "reminded_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("excused_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "excused_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="excused_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="bookings_excused",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
            ],
            options={
                "table": "booking",
                "app": "linli",
                "unique_together": (("activity", "waitlist_ticket"),),
                "indexes": [
                    Index(fields=["activity_id", "status"]),
                    Index(fields=["user_id", "status"]),
                ],
                "pk_attr": "id",
                "table_description": "One person's place in an activity: seat, waitlist ticket or draw entry.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BookingQuota",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="booking_quotas",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("key", fields.CharField(max_length=40)),
                ("used", fields.IntField(default=0)),
            ],
            options={
                "table": "booking_quota",
                "app": "linli",
                "unique_together": (("user", "key"),),
                "pk_attr": "id",
                "table_description": "Active bookings a person holds in one category and calendar month (guarded counter).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DeliveryRefusal",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refusals",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("channel", fields.CharField(max_length=32)),
                ("template_key", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "delivery_refusal",
                "app": "linli",
                "unique_together": (("user", "channel", "template_key"),),
                "pk_attr": "id",
                "table_description": "WeChat said the user refused (43101): never try that template on that channel again.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EarningRule",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("event_type", fields.CharField(max_length=32)),
                ("points", fields.IntField()),
                ("multiplier_percent", fields.IntField(default=100)),
                ("daily_cap", fields.IntField(null=True)),
                ("monthly_cap", fields.IntField(null=True)),
                ("effective_from", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("note", fields.CharField(default="", max_length=200)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="points_rules",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_rule",
                "app": "linli",
                "unique_together": (("event_type", "effective_from"),),
                "pk_attr": "id",
                "table_description": "One version of the rule for an event type, in force from effective_from to the next one.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EarningTally",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="points_tallies",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("event_type", fields.CharField(max_length=32)),
                ("period", fields.CharField(max_length=10)),
                ("earned", fields.IntField(default=0)),
            ],
            options={
                "table": "points_tally",
                "app": "linli",
                "unique_together": (("user", "event_type", "period"),),
                "pk_attr": "id",
                "table_description": "Points a user earned for one event type in one local day or month, for the rule caps.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Notice",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "street",
                    fields.ForeignKeyField(
                        "linli.Street",
                        source_field="street_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notices",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notices",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=64)),
                ("body", fields.TextField(unique=False)),
                ("link", fields.CharField(default="", max_length=255)),
                ("audience", fields.CharField(default="all", max_length=16)),
                (
                    "building_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "unit_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("activity_id", fields.BigIntField(null=True)),
                ("status", fields.CharField(default="published", max_length=16)),
                ("publish_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notices_created",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "cancelled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("fanout_cursor", fields.BigIntField(default=0)),
                ("fanout_count", fields.IntField(default=0)),
                (
                    "fanout_done_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "notice",
                "app": "linli",
                "indexes": [
                    Index(fields=["status", "publish_at"]),
                    Index(fields=["community_id", "publish_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A notice staff publish to a community (or the whole street) and an audience in it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PartyRegistration",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_registrations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_registrations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=32)),
                ("phone_encrypted", fields.TextField(unique=False)),
                ("phone_index", fields.CharField(db_index=True, max_length=64)),
                ("work_unit", fields.CharField(db_index=True, max_length=64)),
                ("party_org", fields.CharField(max_length=64)),
                ("party_org_contact", fields.CharField(default="", max_length=32)),
                ("party_org_phone_encrypted", fields.TextField(null=True, unique=False)),
                ("address", fields.CharField(default="", max_length=64)),
                (
                    "skills",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("skills_note", fields.CharField(default="", max_length=128)),
                ("skills_text", fields.CharField(default="", max_length=400)),
                (
                    "preferred_post_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "available_times",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("available_note", fields.CharField(default="", max_length=128)),
                ("status", fields.CharField(default="pending", db_index=True, max_length=16)),
                ("active_key", fields.CharField(null=True, unique=True, max_length=32)),
                ("review_reason", fields.CharField(default="", max_length=200)),
                (
                    "reviewed_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="reviewed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_registrations_reviewed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "reviewed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "approved_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("end_reason", fields.CharField(default="", max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "party_registration",
                "app": "linli",
                "indexes": [Index(fields=["community_id", "status"])],
                "pk_attr": "id",
                "table_description": "One report-in (报到) of a party member to the community where they live.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsBatch",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="points_batches",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "expires_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("earned", fields.IntField(default=0)),
                ("remaining", fields.IntField(default=0)),
                ("expired", fields.IntField(default=0)),
                ("expiry_notified", fields.BooleanField(default=False)),
            ],
            options={
                "table": "points_batch",
                "app": "linli",
                "unique_together": (("user", "expires_at"),),
                "pk_attr": "id",
                "table_description": "Points a user earned that expire at the same moment, with what is left of them.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsLedgerEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="ledger",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("delta", fields.IntField()),
                ("balance_after", fields.IntField()),
                ("source_type", fields.CharField(max_length=32)),
                ("source_id", fields.CharField(max_length=64)),
                ("reason", fields.CharField(default="", max_length=255)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="ledger_actions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("community_id", fields.IntField(null=True)),
                ("unit_id", fields.IntField(null=True)),
                (
                    "rule",
                    fields.ForeignKeyField(
                        "linli.EarningRule",
                        source_field="rule_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_ledger",
                "app": "linli",
                "unique_together": (("user", "source_type", "source_id"),),
                "indexes": [
                    Index(fields=["user_id", "id"]),
                    Index(fields=["community_id", "created_at"]),
                    Index(fields=["unit_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "Append-only: every balance change is one row, and a (user, source) pays at most once.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsBatchUse",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "entry",
                    fields.ForeignKeyField(
                        "linli.PointsLedgerEntry",
                        source_field="entry_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="batch_uses",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "linli.PointsBatch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="uses",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("amount", fields.IntField()),
            ],
            options={
                "table": "points_batch_use",
                "app": "linli",
                "unique_together": (("entry", "batch"),),
                "pk_attr": "id",
                "table_description": "How much of a batch one debit took, so a refund puts the points back where they were.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsPreference",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.OneToOneField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="points_preference",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("leaderboard_opt_in", fields.BooleanField(default=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_preference",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "A user's points settings: whether they appear by name on leaderboards.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Reward",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="rewards",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=40)),
                ("description", fields.TextField(default="", unique=False)),
                ("image_url", fields.CharField(default="", max_length=500)),
                ("cost", fields.IntField()),
                ("stock", fields.IntField()),
                ("per_user_limit", fields.IntField(default=1)),
                (
                    "on_sale_from",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "on_sale_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("pickup_place", fields.CharField(default="", max_length=100)),
                ("pickup_days", fields.IntField()),
                ("active", fields.BooleanField(default=True)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="rewards_created",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_reward",
                "app": "linli",
                "indexes": [Index(fields=["community_id", "active"])],
                "pk_attr": "id",
                "table_description": "A reward a community offers for points, with the stock left to redeem.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Redemption",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "reward",
                    fields.ForeignKeyField(
                        "linli.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("community_id", fields.IntField()),
                ("cost", fields.IntField()),
                ("pickup_code", fields.CharField(unique=True, max_length=16)),
                ("status", fields.CharField(default="pending_pickup", max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("reminded", fields.BooleanField(default=False)),
                (
                    "fulfilled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "fulfilled_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="fulfilled_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions_verified",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "closed_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="closed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions_closed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("close_reason", fields.CharField(default="", max_length=200)),
            ],
            options={
                "table": "points_redemption",
                "app": "linli",
                "indexes": [
                    Index(fields=["user_id", "id"]),
                    Index(fields=["community_id", "status"]),
                    Index(fields=["status", "expires_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A reward bought with points, waiting for pickup until staff verify its code.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RewardHolding",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "reward",
                    fields.ForeignKeyField(
                        "linli.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="holdings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="reward_holdings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("count", fields.IntField(default=0)),
            ],
            options={
                "table": "points_reward_holding",
                "app": "linli",
                "unique_together": (("reward", "user"),),
                "pk_attr": "id",
                "table_description": "How many live redemptions (waiting or picked up) a user holds of one reward.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RoleGrant",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="grants",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("role", fields.CharField(max_length=32)),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="grants",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("scope_key", fields.CharField(max_length=32)),
                (
                    "granted_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="granted_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="grants_given",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "role_grant",
                "app": "linli",
                "unique_together": (("user", "role", "scope_key"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ServicePost",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_posts",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("term", fields.IntField()),
                ("kind", fields.CharField(default="post", max_length=8)),
                ("title", fields.CharField(max_length=64)),
                ("description", fields.TextField(default="", unique=False)),
                ("location", fields.CharField(default="", max_length=64)),
                (
                    "skills",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("capacity", fields.IntField(default=0)),
                ("taken", fields.IntField(default=0)),
                ("status", fields.CharField(default="active", max_length=8)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_posts_created",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "party_post",
                "app": "linli",
                "indexes": [Index(fields=["community_id", "term"])],
                "pk_attr": "id",
                "table_description": "A service post (岗位 / 文明示范岗) or community task of one community and term (year).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PostAssignment",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "post",
                    fields.ForeignKeyField(
                        "linli.ServicePost",
                        source_field="post_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="assignments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_assignments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_assignments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("term", fields.IntField()),
                ("status", fields.CharField(default="active", max_length=16)),
                ("term_key", fields.CharField(null=True, unique=True, max_length=40)),
                (
                    "assigned_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="assigned_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_assignments_made",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "ended_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="ended_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_assignments_ended",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("end_reason", fields.CharField(default="", max_length=200)),
            ],
            options={
                "table": "party_post_assignment",
                "app": "linli",
                "indexes": [
                    Index(fields=["post_id", "status"]),
                    Index(fields=["user_id", "status"]),
                ],
                "pk_attr": "id",
                "table_description": "A member holding a post for its term (claimed, or assigned by staff).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ServiceRecord",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_service_records",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_service_records",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "post",
                    fields.ForeignKeyField(
                        "linli.ServicePost",
                        source_field="post_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="records",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("task", fields.CharField(default="", max_length=64)),
                ("source", fields.CharField(default="qr", max_length=8)),
                ("status", fields.CharField(default="open", db_index=True, max_length=8)),
                ("open_key", fields.CharField(null=True, unique=True, max_length=32)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("raw_minutes", fields.IntField(default=0)),
                ("minutes", fields.IntField(default=0)),
                ("points", fields.IntField(default=0)),
                ("note", fields.CharField(default="", max_length=200)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_service_records_made",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "party_service_record",
                "app": "linli",
                "indexes": [
                    Index(fields=["community_id", "status"]),
                    Index(fields=["user_id", "started_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One stint of service at a post or task, by QR check-in/out or added by staff.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ServiceRecordAudit",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "record",
                    fields.ForeignKeyField(
                        "linli.ServiceRecord",
                        source_field="record_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="audits",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="party_record_audits",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("action", fields.CharField(max_length=16)),
                ("reason", fields.CharField(default="", max_length=200)),
                (
                    "before",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "after",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "party_service_audit",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "Who changed a service record, when, why, and what it was before and after.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ServiceRecordDay",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "record",
                    fields.ForeignKeyField(
                        "linli.ServiceRecord",
                        source_field="record_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="days",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_service_days",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="party_service_days",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "post",
                    fields.ForeignKeyField(
                        "linli.ServicePost",
                        source_field="post_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="service_days",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("service_date", fields.DateField()),
                ("minutes", fields.IntField()),
            ],
            options={
                "table": "party_service_day",
                "app": "linli",
                "unique_together": (("record", "service_date"),),
                "indexes": [
                    Index(fields=["user_id", "service_date"]),
                    Index(fields=["community_id", "service_date"]),
                ],
                "pk_attr": "id",
                "table_description": "The minutes one record credits on one local (Asia/Shanghai) day, after the day cap.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SubscriptionConsent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consents",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("template_key", fields.CharField(max_length=32)),
                ("remaining", fields.IntField(default=0)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "subscription_consent",
                "app": "linli",
                "unique_together": (("user", "template_key"),),
                "pk_attr": "id",
                "table_description": "Mini-program subscribe-message consents left: each one allows exactly one message.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SubscriptionHold",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("outbox_id", fields.BigIntField(unique=True)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consent_holds",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("template_key", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "subscription_hold",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "A consent taken for one outbox message: a retry of that message (after a crash or a",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WechatIdentity",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("app_id", fields.CharField(max_length=64)),
                ("openid", fields.CharField(max_length=128)),
                ("unionid", fields.CharField(null=True, db_index=True, max_length=128)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "wechat_identity",
                "app": "linli",
                "unique_together": (("app_id", "openid"),),
                "pk_attr": "id",
                "table_description": "One WeChat identity (mini-program or official account) of a user.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Wish",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "community",
                    fields.ForeignKeyField(
                        "linli.Community",
                        source_field="community_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="wishes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "poster",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="poster_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="wishes_posted",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=64)),
                ("description", fields.TextField(unique=False)),
                ("category", fields.CharField(max_length=16)),
                ("needed_by", fields.DateField(null=True)),
                ("address", fields.CharField(default="", max_length=128)),
                (
                    "status",
                    fields.CharField(default="pending_review", db_index=True, max_length=16),
                ),
                ("review_reason", fields.CharField(default="", max_length=255)),
                (
                    "reviewed_by",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="reviewed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="wishes_reviewed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "reviewed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "claimer",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="claimer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="wishes_claimed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "claimer_unit",
                    fields.ForeignKeyField(
                        "linli.Unit",
                        source_field="claimer_unit_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="wishes_claimed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("claimed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "claim_due_at",
                    fields.DatetimeField(
                        null=True, db_index=True, auto_now=False, auto_now_add=False
                    ),
                ),
                ("fulfil_note", fields.TextField(default="", unique=False)),
                (
                    "fulfilled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("rating", fields.SmallIntField(null=True)),
                ("thanks", fields.CharField(default="", max_length=255)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "wish",
                "app": "linli",
                "indexes": [Index(fields=["community_id", "status"])],
                "pk_attr": "id",
                "table_description": "A resident's small concrete wish, public only after staff review.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WishClaimer",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.OneToOneField(
                        "linli.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="wish_claimer",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("open_claims", fields.IntField(default=0)),
            ],
            options={
                "table": "wish_claimer",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "How many claims a person holds open, moved by guarded statements in the claim's",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WishEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "wish",
                    fields.ForeignKeyField(
                        "linli.Wish",
                        source_field="wish_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("action", fields.CharField(max_length=24)),
                ("from_status", fields.CharField(null=True, max_length=16)),
                ("to_status", fields.CharField(max_length=16)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "linli.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="wish_events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("actor_role", fields.CharField(max_length=16)),
                ("note", fields.CharField(default="", max_length=512)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "wish_event",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "One transition of a wish (who, from, to, why), shown to the poster and staff.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WishPhoto",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "wish",
                    fields.OneToOneField(
                        "linli.Wish",
                        source_field="wish_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="photo",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("content_type", fields.CharField(max_length=32)),
                ("content", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "wish_photo",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "The optional photo a claimer adds when fulfilling a wish (seen by poster and staff).",
            },
            bases=["Model"],
        ),
    ]
