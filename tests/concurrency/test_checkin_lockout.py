"""Check-in lockout under a burst against a two-worker server on PostgreSQL.

One member fires 20 wrong check-in codes at once at `linli serve --workers 2`. Each attempt
takes its count in the database before its code is compared, so whichever worker and
connection each lands on, exactly 5 are compared (and answered checkin_code_invalid) and
the other 15 are refused checkin_locked; afterwards the right code is refused too.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.core import checkin
from backend.core.db import close_db, init_db
from backend.core.models import UsageCounter
from backend.party import hours, posts, records
from backend.party.models import ServiceRecord
from backend.party.schemas import PostIn
from tests.concurrency.harness import fire, load_client
from tests.factories import auth_headers, make_community, make_staff
from tests.factories.party import make_member

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize(
        "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
    ),
]

LIMIT, BURST = 5, 20
# A day-long window, so that a burst of a second cannot straddle two windows.
WINDOW_MINUTES = 24 * 60


async def start(live_server_factory, settings):
    # The factory migrates with asyncio.run, which cannot nest in this test's running loop.
    server = await asyncio.to_thread(
        live_server_factory,
        workers=2,
        LINLI_CHECKIN_MAX_FAILURES=str(LIMIT),
        LINLI_CHECKIN_LOCKOUT_MINUTES=str(WINDOW_MINUTES),
    )
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    return server


async def test_a_burst_of_wrong_codes_is_compared_at_most_the_limit(settings, live_server_factory):
    server = await start(live_server_factory, settings)
    try:
        community = await make_community()
        staff = await make_staff(community)
        member, _ = await make_member(community, staff)
        # A task open round the clock: the server runs on the real clock.
        task = await posts.create_post(
            actor=staff,
            data=PostIn(
                community_id=community.id,
                title="社区巡查",
                term=hours.current_term(),
                kind="task",
                open_from=0,
                open_until=24 * 60,
            ),
        )
        subject = records.post_subject(task.id)
        # Stay clear of the window's end (00:00 UTC), where a burst could fall in two.
        seconds_left = WINDOW_MINUTES * 60 - int(time.time()) % (WINDOW_MINUTES * 60)
        if seconds_left < 30:
            await asyncio.sleep(seconds_left + 1)
        right = checkin.current_code(subject=subject)[0]
        wrong = "000000" if right != "000000" else "111111"
        headers = auth_headers(member)
        url = f"/api/v1/posts/{task.id}/checkin"

        async def guess(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.post(url, json={"code": wrong}, headers=headers)

        async with load_client(server.base_url, connections=BURST) as client:
            tally = await fire(client, BURST, guess)
            after = await client.post(
                url, json={"code": checkin.current_code(subject=subject)[0]}, headers=headers
            )

        assert 500 not in tally.statuses, tally.statuses
        assert tally.count(409, "checkin_code_invalid") == LIMIT, tally.codes
        assert tally.count(429, "checkin_locked") == BURST - LIMIT, tally.codes
        counted = await UsageCounter.filter(key=f"checkin-fail:{subject}:{member.id}").values_list(
            "count", flat=True
        )
        assert sum(counted) == LIMIT
        assert (after.status_code, after.json()["error"]["code"]) == (429, "checkin_locked")
        assert not await ServiceRecord.exists(user_id=member.id)
    finally:
        await close_db()
