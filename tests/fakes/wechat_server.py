"""A fake WeChat (and WeCom robot) API server: real HTTP on 127.0.0.1, in a thread.

Tests point LINLI_WECHAT_API_BASE and LINLI_WECOM_WEBHOOK_BASE at it. It issues access
tokens as WeChat does (a new `cgi-bin/token` ends the previous one; `cgi-bin/stable_token`
hands out the same one until forced, and the two are kept apart), answers code2session and
OAuth, accepts template / subscribe / robot messages and records every call, and can be told
to answer the next calls with a WeChat errcode.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeWechatState:
    calls: list[Call] = field(default_factory=list)
    # js_code / oauth code -> (openid, unionid)
    codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    valid_tokens: dict[str, str] = field(default_factory=dict)  # token -> appid
    # The latest token per appid of each interface: a new `cgi-bin/token` ends the previous
    # one, while `cgi-bin/stable_token` hands out the same one until it is forced or expires;
    # the two are kept apart, as WeChat keeps them.
    plain_tokens: dict[str, str] = field(default_factory=dict)
    stable_tokens: dict[str, str] = field(default_factory=dict)
    forced: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    token_counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class RawAnswer:
    """A forced answer sent as given (see FakeWechat.answer_next)."""

    body: Any
    status: int = 200


class FakeWechat:
    """Handle on the running fake: register codes, force errors, inspect calls."""

    def __init__(self) -> None:
        self.state = FakeWechatState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeWechat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def register_code(self, code: str, openid: str, unionid: str | None = None) -> None:
        with self.state.lock:
            self.state.codes[code] = (openid, unionid)

    def fail_next(self, path: str, errcode: int, *, times: int = 1, errmsg: str = "") -> None:
        """Answer the next `times` calls to `path` with `errcode` (HTTP 200, as WeChat does)."""
        with self.state.lock:
            for _ in range(times):
                self.state.forced[path].append({"errcode": errcode, "errmsg": errmsg or "forced"})

    def answer_next(self, path: str, answer: Any, *, status: int = 200, times: int = 1) -> None:
        """Answer the next `times` calls to `path` with `answer` as it is: any JSON value, or
        bytes sent raw (a malformed payload), with HTTP `status`."""
        with self.state.lock:
            for _ in range(times):
                self.state.forced[path].append(RawAnswer(answer, status))

    def invalidate_tokens(self) -> None:
        with self.state.lock:
            self.state.valid_tokens.clear()

    def calls_to(self, path: str) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if c.path == path]

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.forced.clear()


MESSAGE_PATHS = (
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/send",
    "/cgi-bin/message/custom/send",
    "/cgi-bin/menu/create",
)


def _make_handler(state: FakeWechatState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (40 ms) on every reused keep-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            parsed = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            path = parsed.path
            with state.lock:
                state.calls.append(Call(method, path, query, body))
                forced = state.forced[path].pop(0) if state.forced.get(path) else None
            status = 200
            if isinstance(forced, RawAnswer):
                status, answer = forced.status, forced.body
            else:
                answer = forced or self._answer(path, query, body)
            if isinstance(answer, bytes):
                payload = answer
            else:
                payload = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
            if path == "/cgi-bin/token":
                return self._plain_token(query)
            if path == "/cgi-bin/stable_token":
                return self._stable_token(body)
            if path in ("/sns/jscode2session", "/sns/oauth2/access_token"):
                code = query.get("js_code") or query.get("code") or ""
                with state.lock:
                    known = state.codes.get(code)
                if known is None:
                    return {"errcode": 40029, "errmsg": "invalid code"}
                openid, unionid = known
                answer: dict[str, Any] = {"openid": openid, "session_key": "c2Vzc2lvbg=="}
                if path == "/sns/oauth2/access_token":
                    answer = {
                        "openid": openid,
                        "access_token": "oauth-token",
                        "expires_in": 7200,
                        "refresh_token": "oauth-refresh",
                        "scope": "snsapi_base",
                    }
                if unionid:
                    answer["unionid"] = unionid
                return answer
            if path in MESSAGE_PATHS:
                with state.lock:
                    valid = query.get("access_token") in state.valid_tokens
                if not valid:
                    return {"errcode": 40001, "errmsg": "invalid credential"}
                return {"errcode": 0, "errmsg": "ok", "msgid": len(state.calls)}
            if path == "/cgi-bin/webhook/send":
                return {"errcode": 0, "errmsg": "ok"}
            return {"errcode": 404, "errmsg": f"fake has no {path}"}

        def _plain_token(self, query: dict[str, str]) -> dict[str, Any]:
            if query.get("grant_type") != "client_credential":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            appid = query.get("appid", "")
            if not appid or not query.get("secret"):
                return {"errcode": 41002, "errmsg": "appid or secret missing"}
            with state.lock:
                # Every fetch ends the token the previous fetch handed out (to whoever).
                state.valid_tokens.pop(state.plain_tokens.get(appid, ""), None)
                token = f"token-{appid}-{next(state.token_counter)}"
                state.valid_tokens[token] = appid
                state.plain_tokens[appid] = token
            return {"access_token": token, "expires_in": 7200}

        def _stable_token(self, body: Any) -> dict[str, Any]:
            # POST JSON only, as WeChat takes it.
            if not isinstance(body, dict):
                return {"errcode": 47001, "errmsg": "data format error"}
            if body.get("grant_type") != "client_credential":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            appid = body.get("appid")
            if not isinstance(appid, str) or not appid or not body.get("secret"):
                return {"errcode": 41002, "errmsg": "appid or secret missing"}
            force = body.get("force_refresh", False)
            if not isinstance(force, bool):
                return {"errcode": 47001, "errmsg": "force_refresh must be a boolean"}
            with state.lock:
                current = state.stable_tokens.get(appid)
                if current in state.valid_tokens and not force:
                    return {"access_token": current, "expires_in": 7200}
                state.valid_tokens.pop(current or "", None)
                token = f"token-{appid}-{next(state.token_counter)}"
                state.valid_tokens[token] = appid
                state.stable_tokens[appid] = token
            return {"access_token": token, "expires_in": 7200}

    return Handler
