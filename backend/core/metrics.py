"""Prometheus metrics for /metrics.

`linli serve` runs several worker processes behind one port, and a scrape reaches whichever
worker accepts it, so the workers write their samples to files in one folder
(PROMETHEUS_MULTIPROC_DIR, set by `linli serve` before the workers start) and /metrics adds
them up. A single process (`linli run`, the tests) keeps its samples in memory.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("linli_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "linli_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_SENT = Counter("linli_outbox_messages_total", "Outbox deliveries", ["channel", "result"])
# Kept by the bot (bot/runner.py): what waits to be sent, and for how long the oldest has.
OUTBOX_DUE = Gauge(
    "linli_outbox_due", "Outbox messages due to be sent now", multiprocess_mode="max"
)
OUTBOX_OLDEST_DUE_SECONDS = Gauge(
    "linli_outbox_oldest_due_seconds",
    "How long the oldest due outbox message has waited",
    multiprocess_mode="max",
)
# Set by /readyz: Redis trouble is for the operator to see, not a reason to take a replica out.
REDIS_UP = Gauge(
    "linli_redis_up", "Whether Redis answered the last readiness probe", multiprocess_mode="min"
)


def serve(address: str) -> None:
    """Serve this process's /metrics on `address` ("host:port") from a thread of its own."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host)


def render() -> tuple[bytes, str]:
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
