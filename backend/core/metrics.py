"""Prometheus metrics for /metrics (per process; scrape each worker or use the bot's view)."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUESTS = Counter("linli_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "linli_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_SENT = Counter("linli_outbox_messages_total", "Outbox deliveries", ["channel", "result"])
# Set by /readyz: Redis trouble is for the operator to see, not a reason to take a replica out.
REDIS_UP = Gauge(
    "linli_redis_up", "Whether Redis answered the last readiness probe", multiprocess_mode="min"
)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
