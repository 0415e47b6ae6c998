"""Service posts are never overfilled and nobody holds two posts in a term, however many
claims arrive at once.

The control cases come first: with the test-only LINLI_TEST_UNGUARDED_POST_CLAIM=1 a claim
is read-check-write (no guarded UPDATE on the post, no lock on the member's registration,
no term key for the one-post-per-term unique key to bite on), and the same bursts overfill
a post and leave one member holding several posts in a term, so the races the guards close
are real. The second of these is also shown in lockstep, where every claim has read before
any writes, so it does not depend on timing. Then the real server (two workers on
PostgreSQL) fills the post exactly, and a member firing claims at many posts at once ends
up with exactly one, every other claim refused with the stable code already_has_post.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.config import reset_settings
from backend.core.db import close_db, init_db
from backend.party import exceptions, hours, unguarded
from backend.party import posts as party_posts
from backend.party.models import PostAssignment, ServicePost
from tests.concurrency.harness import Tally, fire, in_lockstep, load_client
from tests.factories import auth_headers, make_community, make_staff
from tests.factories.party import make_member, make_post

CAPACITY = 10
CLAIMANTS = 120
POSTS_FOR_ONE = 10
CLAIMS_BY_ONE = 100
# Each lockstep claim holds a pooled connection at the barrier: stay under the pool's 10.
LOCKSTEP_POSTS = 6

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_claimants(n: int):
    """A post of CAPACITY places and `n` approved members of its community."""
    community = await make_community()
    staff = await make_staff(community)
    post = await make_post(community, staff, capacity=CAPACITY, term=hours.current_term())
    members = [(await make_member(community, staff))[0] for _ in range(n)]
    return community, staff, post, members


async def claim_all_at_once(client: httpx.AsyncClient, post: ServicePost, members: list[User]):
    headers = [auth_headers(m) for m in members]

    async def claim(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/posts/{post.id}/claim", headers=headers[i])

    return await fire(client, len(members), claim)


async def assert_filled_exactly(tally: Tally, post: ServicePost) -> None:
    assert tally.statuses == {200: CAPACITY, 409: CLAIMANTS - CAPACITY}, tally.statuses
    assert tally.count(409, "post_full") == CLAIMANTS - CAPACITY
    assert (await ServicePost.get(id=post.id)).taken == CAPACITY
    assert await PostAssignment.filter(post_id=post.id, status="active").count() == CAPACITY


async def posts_for_one_member(community, staff, n: int) -> tuple[User, list[ServicePost]]:
    """A fresh approved member and `n` roomy posts of the same term."""
    member, _ = await make_member(community, staff)
    posts = [
        await make_post(community, staff, title=f"岗位{i}", capacity=CLAIMS_BY_ONE)
        for i in range(n)
    ]
    return member, posts


async def fire_one_member_everywhere(client: httpx.AsyncClient, community, staff):
    """One member's CLAIMS_BY_ONE claims at once, spread over POSTS_FOR_ONE posts."""
    member, posts = await posts_for_one_member(community, staff, POSTS_FOR_ONE)
    headers = auth_headers(member)

    async def claim(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/posts/{posts[i % POSTS_FOR_ONE].id}/claim", headers=headers)

    return member, posts, await fire(client, CLAIMS_BY_ONE, claim)


async def posts_held(member: User, posts: list[ServicePost]) -> tuple[int, int]:
    """(active assignments of `member`, places taken over `posts`)."""
    held = await PostAssignment.filter(user_id=member.id, status="active").count()
    taken = await ServicePost.filter(id__in=[p.id for p in posts]).values_list("taken", flat=True)
    return held, sum(taken)


async def one_member_claims_everywhere(client: httpx.AsyncClient, community, staff) -> Tally:
    member, posts, tally = await fire_one_member_everywhere(client, community, staff)
    assert tally.statuses == {200: 1, 409: CLAIMS_BY_ONE - 1}, tally.statuses
    assert tally.count(409, "already_has_post") == CLAIMS_BY_ONE - 1
    assert await posts_held(member, posts) == (1, 1)
    return tally


async def _against_live_server(settings, live_server_factory, body, **env: str) -> None:
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(live_server_factory, workers=2, **env)
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    try:
        async with load_client(server.base_url, connections=CLAIMANTS) as client:
            await body(client)
    finally:
        await close_db()


# --- in one process, on both databases ---


async def test_concurrent_claims_in_one_process_fill_the_post_exactly(client):
    community, staff, post, members = await make_claimants(CLAIMANTS)
    await assert_filled_exactly(await claim_all_at_once(client, post, members), post)
    await one_member_claims_everywhere(client, community, staff)


# --- the control cases: without the guards the races are real ---


@postgres_only
async def test_control_unguarded_claims_in_lockstep_give_one_member_many_posts(
    db, monkeypatch: pytest.MonkeyPatch
):
    community = await make_community()
    staff = await make_staff(community)
    member, posts = await posts_for_one_member(community, staff, LOCKSTEP_POSTS)
    monkeypatch.setenv("LINLI_TEST_UNGUARDED_POST_CLAIM", "1")
    reset_settings()

    async def claim(post: ServicePost, barrier: asyncio.Barrier) -> bool:
        # Every claim waits here after its reads until all of them have read.
        monkeypatch.setattr(unguarded, "race_window", barrier.wait)
        try:
            await party_posts.claim_post(user=member, post_id=post.id)
        except exceptions.AlreadyHasPost:
            return False
        return True

    try:
        succeeded = await in_lockstep(posts, 1, claim)
    finally:
        reset_settings()
    # Each claim saw a member without a post, and no key stopped the writes: one per post.
    assert succeeded == LOCKSTEP_POSTS
    assert await posts_held(member, posts) == (LOCKSTEP_POSTS, LOCKSTEP_POSTS)


@postgres_only
@pytest.mark.slow
async def test_control_unguarded_claims_overfill_the_post_and_double_up_a_member(
    settings, live_server_factory
):
    async def bursts(client: httpx.AsyncClient) -> None:
        community, staff, post, members = await make_claimants(CLAIMANTS)
        tally = await claim_all_at_once(client, post, members)
        held = await PostAssignment.filter(post_id=post.id, status="active").count()
        assert len(tally.successes()) > CAPACITY, tally.statuses
        assert held > CAPACITY

        member, posts, tally = await fire_one_member_everywhere(client, community, staff)
        assert 500 not in tally.statuses, tally.statuses
        assert len(tally.successes()) > 1, tally.statuses
        held, _ = await posts_held(member, posts)
        assert held > 1

    await _against_live_server(
        settings, live_server_factory, bursts, LINLI_TEST_UNGUARDED_POST_CLAIM="1"
    )


# --- two workers on PostgreSQL: the real thing ---


@postgres_only
@pytest.mark.slow
async def test_concurrent_claims_across_two_workers_keep_capacity_and_one_post_per_term(
    settings, live_server_factory
):
    async def bursts(client: httpx.AsyncClient) -> None:
        community, staff, post, members = await make_claimants(CLAIMANTS)
        await assert_filled_exactly(await claim_all_at_once(client, post, members), post)
        await one_member_claims_everywhere(client, community, staff)

    await _against_live_server(settings, live_server_factory, bursts)
