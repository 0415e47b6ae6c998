"""The demo seed's posts and approved party member (made once), and the bot's party jobs."""

from __future__ import annotations

from backend.accounts import service as accounts_service
from backend.accounts.models import User
from backend.core import checkin
from backend.core.clock import clock
from backend.core.models import OutboxMessage
from backend.party import records
from backend.party.models import PartyRegistration, PostAssignment, ServicePost, ServiceRecord
from backend.seed import DEMO_POSTS
from bot import jobs_party
from bot.scheduler import JOBS
from tests.factories import local, make_community, make_staff
from tests.factories.party import make_member, make_post
from tests.seeding import seeded_twice


async def test_the_seed_makes_posts_and_an_approved_member_once(settings) -> None:
    async with seeded_twice(settings):
        assert await ServicePost.all().count() == len(DEMO_POSTS)
        member = await User.get(persona="party_member")
        registration = await PartyRegistration.get(user_id=member.id)
        assert registration.status == "approved"
        assert registration.community_id == member.community_id
        assert await accounts_service.has_role(member, "party_member", member.community_id)
        held = await PostAssignment.get(user_id=member.id, status="active").prefetch_related("post")
        assert held.post.title == "绿化养护岗" and held.post.taken == 1


def test_the_party_jobs_are_scheduled() -> None:
    names = {job.name: job.run for job in JOBS}
    assert names["party.monthly_summaries"] is jobs_party.send_party_monthly_summaries
    assert names["party.expire_checkins"] is jobs_party.expire_party_checkins


async def test_the_jobs_send_summaries_once_and_expire_forgotten_check_ins(db, settings) -> None:
    clock.set(local(2026, 2, 1, 9, 0))
    community = await make_community()
    staff = await make_staff(community)
    member, _ = await make_member(community, staff)
    task = await make_post(community, staff, kind="task", capacity=0, title="社区大扫除")
    code = checkin.current_code(subject=records.post_subject(task.id))[0]
    record = await records.check_in(user=member, post_id=task.id, code=code)
    clock.set(local(2026, 3, 1, 9, 0))
    for _ in range(2):
        await jobs_party.send_party_monthly_summaries(settings)
        await jobs_party.expire_party_checkins(settings)
    assert await OutboxMessage.filter(dedupe_key=f"party-monthly:{member.id}:2026-02").count() == 1
    assert (await ServiceRecord.get(id=record.id)).status == "expired"
