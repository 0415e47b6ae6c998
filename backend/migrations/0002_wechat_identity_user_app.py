from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("linli", "0001_initial")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="WechatIdentity",
            index=Index(fields=["user_id", "app_id"]),
        ),
    ]
