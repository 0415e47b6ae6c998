"""A small harness for race tests: fire many requests at once, or run attempts in lockstep.

`fire` sends N requests concurrently (through one client with a connection for each) and
tallies what came back by status and error code. `in_lockstep` is for control cases that
prove a race is real: each round, every party does its read, waits at a barrier until all
have read, then writes — so a check-then-write overspends every time, not only when the
scheduler happens to interleave it, and pass/fail never depends on timing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

C = TypeVar("C")

LOCKSTEP_TIMEOUT = 60


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None  # the error envelope's code, None for a success
    body: Any


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)

    @property
    def codes(self) -> Counter[str | None]:
        return Counter(o.code for o in self.outcomes)

    def count(self, status: int, code: str | None = None) -> int:
        return sum(
            1 for o in self.outcomes if o.status == status and (code is None or o.code == code)
        )

    def successes(self) -> list[Outcome]:
        return [o for o in self.outcomes if 200 <= o.status < 300]


def _outcome(response: httpx.Response) -> Outcome:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    code = None
    if response.status_code >= 400 and isinstance(body, dict):
        code = (body.get("error") or {}).get("code")
    return Outcome(status=response.status_code, code=code, body=body)


def load_client(base_url: str, *, connections: int, timeout: float = 120) -> httpx.AsyncClient:
    """A client that opens one connection per concurrent request (no queueing in the client)
    and keeps them alive between bursts, as nginx's upstream pool does."""
    return httpx.AsyncClient(
        base_url=base_url,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=timeout,
    )


async def fire(
    client: httpx.AsyncClient,
    n: int,
    request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
) -> Tally:
    """Send `request(client, i)` for i in range(n), all at once; tally the answers.

    A transport error (connection refused, timeout) is raised: it is not an answer.
    """
    start = asyncio.Event()

    async def one(i: int) -> httpx.Response:
        await start.wait()
        return await request(client, i)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0)
    start.set()
    responses = await asyncio.gather(*tasks)
    return Tally([_outcome(r) for r in responses])


async def in_lockstep(
    parties: Sequence[C],
    rounds: int,
    attempt: Callable[[C, asyncio.Barrier], Awaitable[bool]],
) -> int:
    """Run `rounds` rounds in which every party makes one attempt at the same time.

    `attempt(party, barrier)` must `await barrier.wait()` exactly once, between its read and
    its write. Returns how many attempts succeeded.
    """
    succeeded = 0
    for _ in range(rounds):
        barrier = asyncio.Barrier(len(parties))
        # A party that fails before the barrier would strand the rest: fail loudly instead.
        results = await asyncio.wait_for(
            asyncio.gather(*(attempt(p, barrier) for p in parties)), timeout=LOCKSTEP_TIMEOUT
        )
        succeeded += sum(results)
    return succeeded
