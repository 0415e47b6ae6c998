from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("linli", "0002_wechat_identity_user_app")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RewardPicture",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "reward",
                    fields.OneToOneField(
                        "linli.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="picture",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("content_type", fields.CharField(max_length=32)),
                ("content", fields.BinaryField()),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_reward_picture",
                "app": "linli",
                "pk_attr": "id",
                "table_description": "The picture staff uploaded for a reward, shown on the shop (replaced by a new upload).",
            },
            bases=["Model"],
        ),
    ]
