from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("linli", "0003_reward_picture")]

    initial = False

    operations = [
        ops.CreateModel(
            name="UsageCounter",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.CharField(max_length=128)),
                ("bucket", fields.CharField(max_length=32)),
                ("count", fields.IntField(default=0)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "usage_counter",
                "app": "linli",
                "unique_together": (("key", "bucket"),),
                "pk_attr": "id",
                "table_description": "How often a person did something in one window (a local day, a lockout window),",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Community",
            name="contact_name",
            field=fields.CharField(default="", max_length=32),
        ),
        ops.AddField(
            model_name="Community",
            name="contact_phone",
            field=fields.CharField(default="", max_length=32),
        ),
        ops.AddField(
            model_name="ServicePost",
            name="open_from",
            field=fields.IntField(default=420),
        ),
        ops.AddField(
            model_name="ServicePost",
            name="open_until",
            field=fields.IntField(default=1260),
        ),
        ops.AddField(
            model_name="User",
            name="erased_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="User",
            name="token_version",
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name="Wish",
            name="accepted_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Wish",
            name="contact_via",
            field=fields.CharField(default="direct", max_length=16),
        ),
        ops.AddField(
            model_name="WishClaimer",
            name="released_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
