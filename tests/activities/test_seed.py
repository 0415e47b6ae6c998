"""`linli seed-demo` adds the 午间一小时 classes once, open for the demo office worker."""

from __future__ import annotations

from backend.accounts.models import User
from backend.activities import bookings
from backend.activities.models import Activity
from backend.seed import DEMO_CLASSES
from tests.seeding import seeded_twice


async def test_demo_classes_are_seeded_once_and_bookable(settings):
    async with seeded_twice(settings, kv=True):
        titles = await Activity.all().order_by("id").values_list("title", flat=True)
        assert titles == [c[0] for c in DEMO_CLASSES]
        yoga = await Activity.get(title="舞韵瑜伽")
        worker = await User.get(persona="worker")
        view = await bookings.book_activity(user_id=worker.id, activity_id=yoga.id)
        assert view.booking.status == "confirmed"
        baking = await Activity.get(title="西式烘焙")
        assert baking.mode == "draw" and baking.draw_seed_hash
