"""A TCP server on 127.0.0.1 that accepts connections and never answers: what a Redis behind
a dead network path or a frozen host looks like to a client (the connection opens, every
read waits). Runs in a thread of its own, shuts itself down after `lifetime` seconds so a
forgotten one never outlives its test run, and can run as a process for the benchmark:
`python -m tests.fakes.blackhole PORT`.
"""

from __future__ import annotations

import selectors
import socket
import sys
import threading
import time

DEFAULT_LIFETIME_SECONDS = 900.0


class BlackHole:
    def __init__(self, *, port: int = 0, lifetime: float = DEFAULT_LIFETIME_SECONDS) -> None:
        self._listener = socket.create_server(("127.0.0.1", port), backlog=512)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.lifetime = lifetime
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="blackhole", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> BlackHole:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> BlackHole:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.1):
                    if key.fileobj is self._listener:
                        try:
                            conn, _ = self._listener.accept()
                        except BlockingIOError:
                            continue
                        conn.setblocking(False)
                        self.accepted += 1
                        self._held.append(conn)
                        selector.register(conn, selectors.EVENT_READ)
                    else:
                        # Read and drop whatever the client sends, so its writes never block
                        # and only its reads wait; a closed connection is let go.
                        conn = key.fileobj
                        try:
                            data = conn.recv(65536)
                        except (BlockingIOError, ConnectionError):
                            data = b"?"
                        if not data:
                            selector.unregister(conn)
                            conn.close()
                            self._held.remove(conn)
        finally:
            selector.close()
            for conn in self._held:
                conn.close()
            self._held.clear()
            self._listener.close()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_LIFETIME_SECONDS
    hole = BlackHole(port=port, lifetime=lifetime).start()
    print(hole.port, flush=True)
    hole._thread.join()
