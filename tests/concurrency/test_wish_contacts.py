"""Claiming never hands out a poster's phone or address, across two server processes.

The abuse this stops: an account that only set a `community_id` claimed wish after wish,
read each poster's full phone and address, released and claimed the next. Against two
workers on PostgreSQL, a fresh account claims the wishes of six posters in one burst and
releases them: no answer it ever gets holds a poster's full phone or address; the per-person
limit lets exactly three claims through at once, the cooldown refuses the next claim with
the time to come back, and once that wait has passed the daily cap refuses the sixth claim
of the day. Then a poster accepts the claimer: only then does that claimer read the full
contact, and the reveal is in the wish's history for the poster and staff.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.db import close_db, init_db
from backend.wishes import service
from backend.wishes.models import Wish, WishClaimer, WishEvent
from tests.concurrency.harness import Tally, fire, load_client
from tests.factories import auth_headers, make_community, make_staff, make_user
from tests.factories.wishes import submit_wish

POSTERS = 6

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
)


async def make_posters_and_wishes() -> tuple[int, User, list[tuple[int, User, str, str]]]:
    """A community with its staff contact, its staff member, and one open wish per poster
    (wish id, poster, the poster's phone, the wish's address)."""
    community = await make_community(name="新福康里居民区")
    community.contact_name, community.contact_phone = "陈社工", "021-62530101"
    await community.save()
    staff = await make_staff(community, nickname="陈社工")
    wishes = []
    for i in range(POSTERS):
        phone, address = f"1391234{i:04d}", f"新福康里 {i + 1} 弄 {i + 1}0{i + 1} 室"
        poster = await make_user(nickname=f"居民{i}", community=community, phone=phone)
        wish = await submit_wish(
            user=poster,
            community_id=community.id,
            title=f"想请人帮忙买菜 {i}",
            description="腿脚不便，想请人帮忙买一次菜。",
            category="生活帮扶",
            address=address,
        )
        await service.review_wish(actor=staff, wish_id=wish.id, approve=True)
        wishes.append((wish.id, poster, phone, address))
    return community.id, staff, wishes


def leaked(bodies: list[str], wishes: list[tuple[int, User, str, str]]) -> list[str]:
    return [
        secret
        for _, _, phone, address in wishes
        for secret in (phone, address)
        if any(secret in body for body in bodies)
    ]


async def claim_at_once(client: httpx.AsyncClient, wish_ids: list[int], headers) -> Tally:
    async def claim(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(f"/api/v1/wishes/{wish_ids[i]}/claim", headers=headers)

    return await fire(client, len(wish_ids), claim)


def bodies_of(tally: Tally) -> list[str]:
    return [str(o.body) for o in tally.outcomes]


@postgres_only
@pytest.mark.slow
async def test_a_fresh_account_never_reads_a_contact_until_the_poster_accepts(
    settings, live_server_factory
):
    server = await asyncio.to_thread(
        live_server_factory,
        workers=2,
        LINLI_WISH_CLAIM_LIMIT="3",
        LINLI_WISH_CLAIM_COOLDOWN_MINUTES="30",
        LINLI_WISH_CLAIMS_PER_DAY="5",
    )
    EXECUTOR_CACHE.clear()
    await init_db(settings)
    try:
        community_id, staff, wishes = await make_posters_and_wishes()
        fresh = await User.create(nickname="新来的", openid="o-fresh-account")
        headers = auth_headers(fresh)
        seen: list[str] = []
        async with load_client(server.base_url, connections=POSTERS) as client:
            joined = await client.patch(
                "/api/v1/me", json={"community_id": community_id}, headers=headers
            )
            assert joined.status_code == 200, joined.text

            # One burst at all six wishes: the open-claim limit lets exactly three through.
            ids = [wish_id for wish_id, *_ in wishes]
            burst = await claim_at_once(client, ids, headers)
            seen += bodies_of(burst)
            assert burst.statuses == {200: 3, 409: 3}, burst.statuses
            assert burst.count(409, "claim_limit_reached") == 3
            won = [o.body["id"] for o in burst.successes()]
            for body in (o.body for o in burst.successes()):
                assert body["contact"] is None
                assert body["poster_phone_masked"].count("*") == 4
                assert body["community_contact"]["phone"] == "021-62530101"

            # Everything the account can read while it holds the claims, then the releases.
            for wish_id in won:
                seen.append((await client.get(f"/api/v1/wishes/{wish_id}", headers=headers)).text)
            seen.append((await client.get("/api/v1/me/wish-claims", headers=headers)).text)
            for wish_id in won:
                released = await client.post(f"/api/v1/wishes/{wish_id}/release", headers=headers)
                assert released.status_code == 200
                seen.append(released.text)

            # The next claim waits out the cooldown, and says until when.
            cooling = await client.post(f"/api/v1/wishes/{won[0]}/claim", headers=headers)
            seen.append(cooling.text)
            assert cooling.status_code == 429
            error = cooling.json()["error"]
            assert error["code"] == "claim_cooldown"
            assert "为避免反复认领" in error["message"] and "后再认领" in error["message"]
            assert 0 < int(cooling.headers["Retry-After"]) <= 1800

            # Half an hour later (moved in the database both workers read): three claims at
            # once, and the daily cap of five lets exactly two through.
            await WishClaimer.filter(user_id=fresh.id).update(
                released_at=clock.now() - timedelta(minutes=31)
            )
            rest = [wish_id for wish_id in ids if wish_id not in won]
            capped = await claim_at_once(client, rest, headers)
            seen += bodies_of(capped)
            assert capped.statuses == {200: 2, 429: 1}, capped.statuses
            refused = next(o for o in capped.outcomes if o.status == 429)
            assert refused.code == "claims_per_day_reached"
            assert "今天已认领 5 个心愿" in refused.body["error"]["message"]
            assert "明天" in refused.body["error"]["message"]
            for o in capped.successes():
                seen.append(
                    (await client.get(f"/api/v1/wishes/{o.body['id']}", headers=headers)).text
                )
            seen.append((await client.get("/api/v1/me/wish-claims", headers=headers)).text)

            assert leaked(seen, wishes) == []

            # The poster of one held wish accepts the claimer: now, and only now, it is shared.
            held = capped.successes()[0].body["id"]
            _, poster, phone, address = next(w for w in wishes if w[0] == held)
            as_poster = await client.get(f"/api/v1/wishes/{held}", headers=auth_headers(poster))
            assert "accept" in as_poster.json()["actions"]
            accepted = await client.post(
                f"/api/v1/wishes/{held}/accept",
                json={"claimer_id": as_poster.json()["claimer_id"]},
                headers=auth_headers(poster),
            )
            assert accepted.status_code == 200, accepted.text
            mine = (await client.get(f"/api/v1/wishes/{held}", headers=headers)).json()
            assert mine["contact"]["phone"] == phone and mine["contact"]["address"] == address
            for viewer in (poster, staff):
                history = (
                    await client.get(f"/api/v1/wishes/{held}", headers=auth_headers(viewer))
                ).json()["history"]
                shared = [h for h in history if h["action"] == "contact_shared"]
                assert len(shared) == 1 and shared[0]["actor"] == "心愿人"
            # The other poster's wish the account holds stays masked.
            other = next(o.body["id"] for o in capped.successes() if o.body["id"] != held)
            still = (await client.get(f"/api/v1/wishes/{other}", headers=headers)).text
            assert leaked([still], wishes) == []

        assert await WishEvent.filter(action="contact_shared").count() == 1
        assert await Wish.filter(claimer_id=fresh.id, status="claimed").count() == 2
    finally:
        await close_db()
