"""Every H5 form post with a NUL byte in each of its text fields: refused (4xx, never a 5xx)
and nothing written.

The form posts are the POST routes of the H5 pages. Their fields and valid values come from
the forms the pages render for the demo street admin, who may use every page, and from the
route's declared form fields where no page renders the form; each post carries the CSRF
token and the session cookie. Each post carries valid values except for the one field that holds
"\\x00" between ordinary text; the whole database is compared before and after.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from tortoise import Tortoise

from backend.core.db import APP_LABEL
from h5.csrf import FIELD as CSRF_FIELD
from h5.routes import PAGE_ROUTERS
from tests.contract.operations import with_known_failures
from tests.contract.stack import Stack, stack  # noqa: F401
from tests.seeding import open_database

pytestmark = pytest.mark.slow

PERSONA = "street_admin"
NUL = "邻里\x00心愿"
# Ids of the first rows of the demo data (of every kind), where the pages' forms are found.
DEMO_IDS = ("1", "2", "3", "4", "5", "6")
# The one path parameter that is not an id.
PATH_WORDS = {"action": "progress"}
TEXT_INPUTS = {
    "text",
    "textarea",
    "hidden",
    "tel",
    "url",
    "search",
    "date",
    "datetime-local",
    "time",
}


def _routes(method: str) -> list[APIRoute]:
    return [
        route
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and method in route.methods
    ]


def _declared_fields(route: APIRoute) -> dict[str, str]:
    """Form field name -> "text", "texts" or "number", from the route's signature."""
    fields = {}
    for param in route.dependant.body_params:
        annotation = str(param.field_info.annotation)
        if "UploadFile" in annotation:
            continue
        if "list[str]" in annotation:
            fields[param.alias] = "texts"
        elif "str" in annotation:
            fields[param.alias] = "text"
        else:
            fields[param.alias] = "number"
    return fields


def _takes_text(route: APIRoute) -> bool:
    """Whether the route reads text from its form (declared, or read by the handler itself)."""
    if any(kind != "number" for kind in _declared_fields(route).values()):
        return True
    body = inspect.getsource(route.endpoint).split(") ->", 1)[-1]
    return "form" in body


POST_ROUTES = {route.path: route for route in _routes("POST") if _takes_text(route)}
CASES = [(path,) for path in POST_ROUTES]

# (path,) -> what is wrong; each is a strict xfail.
KNOWN: dict[tuple[str], str] = {}


class _Forms(HTMLParser):
    """The post forms of a page: action, enctype and [(name, value, input type)]."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._textarea: list | None = None
        self._select: list | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._form = {
                "action": a.get("action", ""),
                "enctype": a.get("enctype", ""),
                "fields": [],
            }
            self.forms.append(self._form)
        elif self._form is None or not a.get("name"):
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self._form["fields"].append([a["name"], a.get("value", ""), kind])
        elif tag == "textarea":
            self._textarea = [a["name"], "", "textarea"]
            self._form["fields"].append(self._textarea)
        elif tag == "select":
            self._select = [a["name"], None, "select"]
            self._form["fields"].append(self._select)
        elif tag == "option" and self._select is not None and self._select[1] is None:
            self._select[1] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            if self._select is not None and self._select[1] is None:
                self._select[1] = ""
            self._select = None


def _csrf_token(client: httpx.Client, path: str = "/h5/me") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"{path} has no CSRF token"
    return found.group(1)


def _with_ids(path: str, demo_id: str = "1") -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_WORDS.get(m.group(1), demo_id), path)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[httpx.Client]:  # noqa: F811
    """A signed-in street admin's browser: session cookie from the persona login form."""
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        token = _csrf_token(client, "/h5/login")
        signed_in = client.post(
            "/h5/login/persona", data={CSRF_FIELD: token, "persona": PERSONA, "next": "/h5/"}
        )
        assert signed_in.status_code == 303, signed_in.text[:300]
        yield client


@pytest.fixture(scope="module")
def rendered_forms(browser: httpx.Client) -> list[dict[str, Any]]:
    """Every post form the GET pages render for the street admin, on the first demo rows."""
    forms = []
    for route in _routes("GET"):
        ids = DEMO_IDS if "{" in route.path else ("",)
        for demo_id in ids:
            page = browser.get(_with_ids(route.path, demo_id))
            if page.status_code == 200 and "text/html" in page.headers.get("content-type", ""):
                parser = _Forms()
                parser.feed(page.text)
                forms += parser.forms
    return forms


@pytest.fixture(scope="module")
def database(stack: Stack) -> Iterator[asyncio.Runner]:  # noqa: F811
    """The stack's database, open in the test process to compare it before and after."""
    with asyncio.Runner() as runner:
        context = open_database(stack.settings)
        runner.run(context.__aenter__())
        try:
            yield runner
        finally:
            runner.run(context.__aexit__(None, None, None))


async def _fingerprint() -> dict[str, str]:
    """Table -> digest of every row, ordered by primary key."""
    digests = {}
    for model in Tortoise.apps[APP_LABEL].values():
        rows = await model.all().order_by(model._meta.pk_attr).values()
        digests[model._meta.db_table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def _post_form(route: APIRoute, forms: list[dict[str, Any]]) -> tuple[str, list, bool]:
    """(url, [[name, value, kind]], multipart?) of a valid post to `route`."""
    declared = _declared_fields(route)
    for form in forms:
        if route.path_regex.match(form["action"]) and form["action"] != "/h5/logout":
            fields = [f for f in form["fields"] if f[0] != CSRF_FIELD]
            named = {f[0] for f in fields}
            fields += [
                [n, "1" if k == "number" else "测试", k]
                for n, k in declared.items()
                if n not in named
            ]
            return form["action"], fields, "multipart" in form["enctype"]
    fields = [[n, "1" if k == "number" else "测试", k] for n, k in declared.items()]
    return _with_ids(route.path), fields, False


def _text_fields(route: APIRoute, fields: list) -> list[str]:
    declared = _declared_fields(route)
    names = []
    for name, _, kind in fields:
        if declared.get(name, "text" if kind in TEXT_INPUTS else "number") != "number":
            names.append(name)
    return list(dict.fromkeys(names))


@pytest.mark.parametrize(("path",), with_known_failures(CASES, KNOWN))
def test_nul_in_a_form_field_writes_nothing(stack, browser, rendered_forms, database, path):  # noqa: F811
    route = POST_ROUTES[path]
    url, fields, multipart = _post_form(route, rendered_forms)
    text_fields = _text_fields(route, fields)
    assert text_fields, f"no page renders a form for {path} and it declares no text field"
    token = _csrf_token(browser)
    problems = []
    for target in text_fields:
        data = [(n, NUL if n == target else v) for n, v, _ in fields]
        data.append((CSRF_FIELD, token))
        before = database.run(_fingerprint())
        if multipart:
            response = browser.post(url, files=[(n, (None, v.encode())) for n, v in data])
        else:
            form: dict[str, list[str]] = {}
            for name, value in data:
                form.setdefault(name, []).append(value)
            response = browser.post(url, data=form)
        after = database.run(_fingerprint())
        changed = sorted(t for t in before if before[t] != after[t])
        if response.status_code >= 500:
            problems.append(f"{target}: {response.status_code} {response.text[:200]}")
        elif "页面已过期或来源不明" in response.text:
            problems.append(f"{target}: refused by the CSRF check, so the field was never read")
        elif response.status_code < 400:
            problems.append(f"{target}: accepted with {response.status_code} instead of refused")
        if changed:
            problems.append(f"{target}: {response.status_code}, rows changed in {changed}")
    assert not problems, f"POST {url} on {stack.backend}:\n" + "\n".join(problems)
