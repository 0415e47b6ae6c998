"""The bot's activity jobs: registered with the scheduler, and each one safe to run again."""

from __future__ import annotations

from datetime import timedelta

from backend.activities import bookings
from backend.activities.models import Activity, Booking
from backend.core.clock import clock
from backend.core.models import OutboxMessage
from bot import jobs_activities
from bot.scheduler import JOBS, Scheduler
from tests.factories import make_community
from tests.factories.activities import freeze, make_activity, residents

ACTIVITY_JOBS = {"activities.reminders", "activities.draws", "activities.no_shows"}


def test_the_jobs_are_registered():
    assert {job.name for job in JOBS} >= ACTIVITY_JOBS


async def test_the_scheduler_runs_draw_reminder_and_no_show_jobs(db, settings):
    freeze()
    community = await make_community()
    people = await residents(community, 3)
    drawn = await make_activity(community, capacity=1, waitlist_capacity=1, mode="draw")
    for person in people:
        await bookings.book_activity(user_id=person.id, activity_id=drawn.id)
    jobs = [job for job in JOBS if job.name in ACTIVITY_JOBS]

    clock.set(drawn.booking_closes_at)
    assert set(await Scheduler(settings, jobs).run_due()) == ACTIVITY_JOBS
    assert (await Activity.get(id=drawn.id)).drawn_at is not None

    clock.set(drawn.starts_at - timedelta(minutes=30))
    await jobs_activities.send_activity_reminders(settings)
    await jobs_activities.send_activity_reminders(settings)
    assert await OutboxMessage.filter(template_key="reminder").count() == 1

    clock.set(drawn.ends_at)
    await jobs_activities.mark_activity_no_shows(settings)
    await jobs_activities.run_activity_draws(settings)
    statuses = sorted(await Booking.filter(activity_id=drawn.id).values_list("status", flat=True))
    assert statuses == ["no_show", "not_drawn", "waitlisted"]
