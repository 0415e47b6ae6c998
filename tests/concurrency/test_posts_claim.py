"""Service posts are never overfilled and nobody holds two posts in a term, however many
claims arrive at once.

The control case comes first: the same burst against a server started with the test-only
LINLI_TEST_UNGUARDED_POST_CLAIM=1 (the guarded UPDATE replaced by read-check-write)
overfills the post, so the race the guard closes is real. Then the real server (two
workers on PostgreSQL) fills the post exactly, and a member firing claims at many posts
at once ends up with exactly one.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.db import close_db, init_db
from backend.party import service
from backend.party.models import PostAssignment, ServicePost
from tests.concurrency.harness import Tally, fire, load_client
from tests.factories import auth_headers, make_community, make_user
from tests.party.helpers import make_member, make_post

CAPACITY = 10
CLAIMANTS = 120
POSTS_FOR_ONE = 10
CLAIMS_BY_ONE = 100

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_claimants(n: int):
    """A post of CAPACITY places and `n` approved members of its community."""
    community = await make_community()
    staff = await make_user(community=community, roles=["staff"])
    post = await make_post(community, staff, capacity=CAPACITY, term=service.current_term())
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


async def one_member_claims_everywhere(client: httpx.AsyncClient, community, staff) -> Tally:
    member, _ = await make_member(community, staff)
    posts = [
        await make_post(community, staff, title=f"岗位{i}", capacity=CLAIMS_BY_ONE)
        for i in range(POSTS_FOR_ONE)
    ]
    headers = auth_headers(member)

    async def claim(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/posts/{posts[i % POSTS_FOR_ONE].id}/claim", headers=headers)

    tally = await fire(client, CLAIMS_BY_ONE, claim)
    assert tally.statuses == {200: 1, 409: CLAIMS_BY_ONE - 1}, tally.statuses
    assert tally.count(409, "already_has_post") == CLAIMS_BY_ONE - 1
    assert await PostAssignment.filter(user_id=member.id, status="active").count() == 1
    taken = await ServicePost.filter(id__in=[p.id for p in posts]).values_list("taken", flat=True)
    assert sum(taken) == 1
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


# --- two workers on PostgreSQL: the control case, then the real thing ---


@postgres_only
@pytest.mark.slow
async def test_control_unguarded_claims_overfill_the_post(settings, live_server_factory):
    async def burst(client: httpx.AsyncClient) -> None:
        _, _, post, members = await make_claimants(CLAIMANTS)
        tally = await claim_all_at_once(client, post, members)
        held = await PostAssignment.filter(post_id=post.id, status="active").count()
        assert len(tally.successes()) > CAPACITY, tally.statuses
        assert held > CAPACITY

    await _against_live_server(
        settings, live_server_factory, burst, LINLI_TEST_UNGUARDED_POST_CLAIM="1"
    )


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
