"""Connections kept alive across idle gaps, as nginx's upstream pool (`keepalive 32`, 60 s) and
any pooling client use them, against `linli serve --workers 2` on PostgreSQL.

When the server closes an idle connection before the client does, a request already on its way
on it is lost: the client sees a connection error, and behind nginx a POST answers 502 (nginx
does not retry it). So the server must keep idle connections longer than its clients."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from backend.core.config import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize(
        "backend", [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])]
    ),
]

# Longer than uvicorn's own default (5 s) and httpx's pool expiry (5 s).
IDLE_GAP_SECONDS = 6.5


def get_on(sock: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 request on an open connection; the status line of its answer
    (b"" when the server has closed the connection)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: linli\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return b""
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(4096)
    return head.split(b"\r\n", 1)[0]


def test_kept_alive_connections_outlive_idle_gaps_with_no_connection_error_and_no_5xx(
    settings: Settings, live_server_factory
):
    server = live_server_factory(workers=2)

    # One connection, one idle gap: the server has not closed it under the client.
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        assert get_on(sock, "/healthz") == b"HTTP/1.1 200 OK"
        time.sleep(IDLE_GAP_SECONDS)
        assert get_on(sock, "/healthz") == b"HTTP/1.1 200 OK"

    # Bursts on a pool that keeps its connections as long as nginx's upstream pool does,
    # after gaps around and past the 5 s that used to close connections under the client.
    async def bursts() -> list[int]:
        statuses: list[int] = []
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=60)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as client:
            for gap in (0, 4.9, 5.0, 5.1, IDLE_GAP_SECONDS):
                await asyncio.sleep(gap)
                answers = await asyncio.gather(
                    *(client.get("/api/v1/activities" if i % 2 else "/healthz") for i in range(64))
                )
                statuses += [a.status_code for a in answers]
        return statuses

    statuses = asyncio.run(bursts())
    assert statuses == [200] * 5 * 64, sorted(set(statuses))
