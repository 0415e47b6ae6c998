"""The per-IP limit behind a proxy, as `linli serve` runs: X-Forwarded-For names the client only
when the peer sending it is the trusted proxy (LINLI_FORWARDED_ALLOW_IPS); from anyone else it
is a forgery that must not let one client pass as many."""

from __future__ import annotations

import httpx
import pytest

from backend.core.config import Settings

pytestmark = pytest.mark.slow

LIMIT = 5


def statuses(base_url: str) -> list[int]:
    """One request each from ten different (claimed) clients."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        return [
            http.get(
                "/api/v1/activities", headers={"X-Forwarded-For": f"203.0.113.{i}"}
            ).status_code
            for i in range(10)
        ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_forged_forwarded_for_does_not_dodge_the_per_ip_limit(
    settings: Settings, live_server_factory
):
    # The proxy is some other host: our own requests come straight from 127.0.0.1.
    server = live_server_factory(
        workers=1,
        LINLI_RATE_LIMITS="on",
        LINLI_RATE_LIMIT_IP_PER_MINUTE=str(LIMIT),
        LINLI_FORWARDED_ALLOW_IPS="172.28.0.10",
    )
    assert statuses(server.base_url) == [200] * LIMIT + [429] * (10 - LIMIT)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_trusted_proxy_names_each_client(settings: Settings, live_server_factory):
    # Here 127.0.0.1 is the proxy, so each forwarded address is a client of its own.
    server = live_server_factory(
        workers=1,
        LINLI_RATE_LIMITS="on",
        LINLI_RATE_LIMIT_IP_PER_MINUTE=str(LIMIT),
        LINLI_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    assert statuses(server.base_url) == [200] * 10
