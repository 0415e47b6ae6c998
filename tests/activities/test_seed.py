"""`linli seed-demo` adds the 午间一小时 classes once, open for the demo office worker."""

from __future__ import annotations

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.activities import service
from backend.activities.models import Activity
from backend.core.db import close_db, init_db
from backend.core.redis import close_kv, init_kv
from backend.seed import DEMO_CLASSES, run_seed_demo


async def test_demo_classes_are_seeded_once_and_bookable(settings):
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    if not settings.is_sqlite:
        await connections.get("default").execute_script(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
        )
    await Tortoise.generate_schemas()
    await close_db()

    await run_seed_demo(settings)
    await run_seed_demo(settings)

    await init_db(settings)
    init_kv(settings)
    try:
        titles = await Activity.all().order_by("id").values_list("title", flat=True)
        assert titles == [c[0] for c in DEMO_CLASSES]
        yoga = await Activity.get(title="舞韵瑜伽")
        worker = await User.get(persona="worker")
        view = await service.book_activity(user_id=worker.id, activity_id=yoga.id)
        assert view.booking.status == "confirmed"
        baking = await Activity.get(title="西式烘焙")
        assert baking.mode == "draw" and baking.draw_seed_hash
    finally:
        await close_db()
        await close_kv()
