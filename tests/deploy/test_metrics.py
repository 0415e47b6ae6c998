"""/metrics behind `linli serve --workers 2`: a scrape reaches one worker, and must still count
what every worker served."""

from __future__ import annotations

import re

import httpx
import pytest

from backend.core.config import Settings

pytestmark = pytest.mark.slow

REQUESTS = 120


def healthz_count(text: str) -> float:
    pattern = r'^linli_http_requests_total\{[^}]*route="/healthz"[^}]*\} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_scrape_counts_the_requests_of_both_workers(settings: Settings, live_server_factory):
    server = live_server_factory(workers=2)
    # A new connection each time, so the two workers share the requests between them.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=server.base_url, limits=no_reuse, timeout=10) as http:
        served = [http.get("/healthz").status_code for _ in range(REQUESTS)]
        scrapes = [http.get("/metrics").text for _ in range(6)]

    assert served == [200] * REQUESTS
    # Whichever worker answers, it counts the requests both served.
    counts = {healthz_count(text) for text in scrapes}
    assert len(counts) == 1 and counts.pop() == REQUESTS, counts
