import json
import logging

from backend.core.logging import JsonFormatter


async def test_metrics_are_prometheus_text(client):
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "linli_http_requests_total" in response.text


async def test_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"


def test_log_lines_are_json_with_request_id():
    record = logging.LogRecord("linli.http", logging.INFO, __file__, 1, "request", (), None)
    record.request_id = "r-9"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r-9" and line["status"] == 200 and line["msg"] == "request"
