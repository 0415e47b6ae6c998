"""Property-based requests from /openapi.json against a running server: never a 500.

Runs on SQLite (one worker) with demo data, as a resident and as a staff member, so
both the refusal paths and the allowed paths are explored.
"""

from __future__ import annotations

import asyncio

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck

from backend.core import db as core_db
from tests.conftest import run_linli

pytestmark = pytest.mark.slow


async def _persona_tokens(settings) -> dict[str, str]:
    from backend.accounts.models import User
    from backend.accounts.service import issue_access_token

    await core_db.init_db(settings)
    try:
        users = await User.filter(persona__in=["resident", "staff"])
        return {u.persona: issue_access_token(user_id=u.id) for u in users}
    finally:
        await core_db.close_db()


@pytest.fixture
def backend() -> str:
    """One stack is enough to find 500s; SQLite keeps the run short."""
    return "sqlite"


@pytest.fixture
def seeded_server(settings, live_server_factory):
    server = live_server_factory(workers=1)
    seeded = run_linli("seed-demo", env=server.env)
    assert seeded.returncode == 0, seeded.stderr
    tokens = asyncio.run(_persona_tokens(settings))
    return server, tokens


def _fuzz(operation, base_url, headers, label, failures, calls):
    @hypothesis.settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        calls.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")

    check()


def test_no_request_gets_a_500(seeded_server):
    server, tokens = seeded_server
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    for persona in ("resident", "staff", None):
        headers = {"Authorization": f"Bearer {tokens[persona]}"} if persona else {}
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{persona or 'anonymous'} {operation.label}"
            _fuzz(operation, server.base_url, headers, label, failures, calls)
    assert len(calls) > 100, "the schema produced too few requests to mean anything"
    assert not failures, "\n".join(failures[:20])
