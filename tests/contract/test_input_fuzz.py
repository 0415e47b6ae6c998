"""Control characters and extreme times in every text, date and datetime input of the API.

For each string field of each request body and each string, date or datetime query or path
parameter of /openapi.json, the other inputs hold valid values drawn from the document (as
a street admin, so the request gets past sign-in) while that one holds NUL, \\x01, \\x1b,
DEL, NEL, U+2028, a lone surrogate or U+FFFF, between drawn text, or an extreme datetime:
year 1, year 9999, 1970, 2100, 30 February, ±14:00 offsets that cross a year boundary.
The answer is never a 5xx; a forbidden character or a time outside 2000–2099 is 422
`invalid` with `fields` naming the input.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from backend.core.text import has_forbidden
from tests.contract.operations import (
    assert_error_envelope,
    openapi_document,
    resolve,
    with_known_failures,
)
from tests.contract.stack import SEED, Stack, http, replay_hint  # noqa: F401

pytestmark = pytest.mark.slow

EXAMPLES = max(1, int(os.environ.get("LINLI_FUZZ_EXAMPLES", "4")) // 2)
PERSONA = "street_admin"

# Characters no stored text may hold. The lone surrogate reaches a JSON body as the escape
# "\ud800" (json.dumps writes it so); a URL or a form can only carry its invalid UTF-8 bytes.
LONE_SURROGATE = "\ud800"
CONTROL = ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u2028", LONE_SURROGATE, "\uffff"]

# (value, inside 2000–2099 local time and a real date?)
DATETIMES = [
    ("0001-01-01T00:00:00", False),
    ("0001-01-01T00:00:00+14:00", False),
    ("9999-12-31T23:59:59Z", False),
    ("9999-12-31T23:59:59-12:00", False),
    ("1970-01-01T00:00:00Z", False),
    ("2100-01-01T00:00:00", False),
    # 2099-12-31 23:00 at -12:00 is already 2100 in Shanghai.
    ("2099-12-31T23:00:00-12:00", False),
    ("2026-02-30T10:00:00", False),
    ("2026-06-01T10:00:00+14:00", True),
    ("2026-06-01T10:00:00-12:00", True),
]
DATES = [
    ("0001-01-01", False),
    ("9999-12-31", False),
    ("1970-01-01", False),
    ("2100-01-01", False),
    ("2026-02-30", False),
    ("2026-02-28", True),
]

# Surroundings for the control character: ordinary text people type.
AROUND = st.text(alphabet="邻里心愿活动 abcXYZ019-", max_size=4)


@dataclass(frozen=True)
class Target:
    location: str  # json, multipart, query or path
    name: str  # dotted for a nested body field
    kind: str  # text, texts (a list of text), date or datetime


def _kind(schema: dict[str, Any]) -> str | None:
    for option in resolve(schema).get("anyOf", [schema]):
        option = resolve(option)
        if option.get("type") == "string":
            if "contentMediaType" in option:
                return None
            return {"date": "date", "date-time": "datetime", "binary": None}.get(
                option.get("format", ""), "text"
            )
        if option.get("type") == "array" and resolve(option.get("items", {})).get("type") == (
            "string"
        ):
            return "texts"
    return None


def _body_targets(schema: dict[str, Any], location: str, prefix: str = "") -> list[Target]:
    found = []
    for name, prop in resolve(schema).get("properties", {}).items():
        if resolve(prop).get("type") == "object":
            found += _body_targets(prop, location, f"{prefix}{name}.")
        elif (kind := _kind(prop)) is not None:
            found.append(Target(location, prefix + name, kind))
    return found


def _targets(operation: dict[str, Any]) -> list[Target]:
    found = [
        Target(p["in"], p["name"], kind)
        for p in operation.get("parameters", [])
        if p["in"] in ("query", "path")
        and (kind := _kind(p["schema"])) in ("text", "date", "datetime")
    ]
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        location = {"application/json": "json", "multipart/form-data": "multipart"}[media_type]
        found += _body_targets(content["schema"], location)
    return found


CASES = [
    (method.upper(), path, target.location, target.name, target.kind)
    for path, methods in openapi_document()["paths"].items()
    for method, operation in methods.items()
    for target in _targets(operation)
]

# (METHOD, path, location, name, kind) -> what is wrong; each is a strict xfail.
KNOWN: dict[tuple[str, str, str, str, str], str] = {}

# A 1x1 PNG: the valid picture of a multipart body.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


FILE_FIELDS = ("photo", "picture")


@pytest.fixture(scope="module")
def api_schema(stack: Stack):
    return schemathesis.openapi.from_url(stack.base_url + "/openapi.json")


def _values(kind: str, before: str, after: str) -> list[tuple[Any, bool, bool]]:
    """(value, refused by contract?, lone surrogate?) for a target of `kind`."""
    if kind in ("date", "datetime"):
        return [(v, not ok, False) for v, ok in (DATES if kind == "date" else DATETIMES)]
    texts = [(before + c + after, True, c == LONE_SURROGATE) for c in CONTROL]
    if kind == "texts":
        return [([v], refused, lone) for v, refused, lone in texts]
    return texts


def _set(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    node = body
    for parent in parents:
        if not isinstance(node.get(parent), dict):
            node[parent] = {}
        node = node[parent]
    node[leaf] = value
    return body


def _clean(value: Any) -> Any:
    """`value` with every character no text may hold replaced, so that only the target is
    unsafe (the document allows any character; the product does not)."""
    if isinstance(value, str):
        return "".join("字" if has_forbidden(ch, multiline=False) else ch for ch in value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _url_part(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _request(case, target: Target, value: Any) -> dict[str, Any]:
    """The keyword arguments of one httpx request: `case`'s valid inputs, `value` at `target`."""
    path_params = {k: _url_part(_clean(v)) for k, v in (case.path_parameters or {}).items()}
    query = {k: _clean(v) for k, v in (case.query or {}).items() if v is not None}
    if target.location == "path":
        path_params[target.name] = _url_part(value)
    elif target.location == "query":
        query[target.name] = value
    url = case.operation.path.format(**path_params)
    if query:
        url += "?" + "&".join(
            f"{_url_part(k)}={_url_part(item)}"
            for k, v in query.items()
            for item in (v if isinstance(v, list) else [v])
        )
    kwargs: dict[str, Any] = {"method": case.method, "url": url}
    media_type = case.media_type
    if media_type == "application/json" or target.location == "json":
        body = _clean(case.body) if isinstance(case.body, dict) else {}
        if target.location == "json":
            body = _set(body, target.name, value)
        # ensure_ascii: a lone surrogate travels as the escape "\ud800", as a client sends it.
        kwargs["content"] = json.dumps(body).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif media_type == "multipart/form-data":
        # Text fields hold ordinary text, file fields a real picture.
        fields = {k: (None, "已按约定完成".encode()) for k in case.body if k not in FILE_FIELDS}
        if target.location == "multipart":
            fields[target.name] = (None, str(value).encode("utf-8", "surrogatepass"))
        files = {k: ("p.png", PNG, "image/png") for k in case.body if k in FILE_FIELDS}
        kwargs["files"] = {**fields, **files}
    return kwargs


def _check(response, target: Target, value: Any, refused: bool, lone: bool) -> str | None:
    """What is wrong with the answer to `value` at `target`, or None."""
    shown = json.dumps(value)
    if response.status_code >= 500:
        return f"{target.name}={shown}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert_error_envelope(response)
    # A lone surrogate in a URL or a form arrives as invalid UTF-8, which is read as U+FFFD.
    if not refused or (lone and target.location != "json"):
        return None
    # A query date outside the window may be answered (an empty report) as long as it is
    # not a 5xx; a body's times are refused by name.
    if target.kind in ("date", "datetime") and target.location != "json":
        return None
    if response.status_code in (401, 403):
        return None
    error = response.json().get("error", {}) if response.status_code == 422 else {}
    fields = error.get("fields") or {}
    named = any(key == target.name or key.startswith(target.name + ".") for key in fields)
    if error.get("code") != "invalid" or not named:
        return (
            f"{target.name}={shown}: expected 422 invalid naming {target.name!r}, got "
            f"{response.status_code} {response.text[:300]}"
        )
    return None


@pytest.mark.parametrize(
    ("method", "path", "location", "name", "kind"), with_known_failures(CASES, KNOWN)
)
def test_unsafe_input_is_refused_by_name(
    stack,
    http,  # noqa: F811
    api_schema,
    method,
    path,
    location,
    name,
    kind,
):
    target = Target(location, name, kind)
    operation = api_schema[path][method]
    # Real demo rows, so that query and path checks run where the handler runs.
    ids = {
        p["name"]: 1
        for p in openapi_document()["paths"][path][method.lower()].get("parameters", [])
        if p["in"] == "path" and resolve(p["schema"]).get("type") == "integer"
    }
    headers = stack.bearer(PERSONA)
    failures: list[str] = []

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(path_parameters=ids), before=AROUND, after=AROUND)
    def run(case, before: str, after: str) -> None:
        for value, refused, lone in _values(kind, before, after):
            kwargs = _request(case, target, value)
            kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
            response = http.request(**kwargs)
            problem = _check(response, target, value, refused, lone)
            if problem and len(failures) < 5:
                failures.append(f"{method} {kwargs['url']}: {problem}")

    run()
    assert not failures, f"{method} {path} on {stack.backend} ({replay_hint()}):\n" + "\n".join(
        failures
    )
