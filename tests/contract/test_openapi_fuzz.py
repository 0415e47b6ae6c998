"""Schemathesis over /openapi.json against `linli serve --workers 2` with the demo data.

Every operation is explored as a resident, as staff, as a street admin and anonymously, on
SQLite and on PostgreSQL + Redis. Each response must be no 5xx, carry a status the route
documents in `responses=`, the documented content type, and a body and headers matching the
documented schema. Valid requests (positive) reach the allowed paths; invalid ones
(negative, as the street admin and anonymously) the refusal paths. The examples are seeded
but vary from run to run: the seed is printed, and LINLI_FUZZ_SEED replays it;
LINLI_FUZZ_EXAMPLES sets the examples per operation and persona.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract.operations import openapi_document, operations, with_known_failures
from tests.contract.stack import PERSONAS, SEED, Stack, replay_hint

pytestmark = pytest.mark.slow

# Chosen so that this file stays under about four minutes on two cores for both stacks.
POSITIVE_EXAMPLES = int(os.environ.get("LINLI_FUZZ_EXAMPLES", "4"))
NEGATIVE_EXAMPLES = max(1, POSITIVE_EXAMPLES // 2)
# Invalid input: the street admin passes every role check, so it reaches validation on every
# route; the anonymous caller meets the sign-in refusals (and cookie checks) first.
NEGATIVE_PERSONAS = ("street_admin", "anonymous")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# (persona or "*", METHOD, path) -> what is wrong; each is a strict xfail.
KNOWN: dict[tuple[str, str, str], str] = {}

CASES = [
    (persona or "anonymous", method, path) for persona in PERSONAS for method, path in operations()
]


@pytest.fixture(scope="module")
def api_schema(stack: Stack):
    return schemathesis.openapi.from_url(stack.base_url + "/openapi.json")


@pytest.fixture(scope="module")
def connection():
    with requests.Session() as pool:
        yield pool


def _explore(
    operation, mode, examples: int, *, base_url, headers, connection, failures, sent
) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode))
    def run(case) -> None:
        if failures:
            return
        response = case.call(base_url=base_url, session=connection, headers=headers, timeout=30)
        sent.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            failures.append(f"{mode.value}: {group}")

    try:
        run()
    except Unsatisfiable:
        # No parameters and no body: there is nothing negative to send.
        if mode is schemathesis.GenerationMode.POSITIVE:
            raise


@pytest.mark.parametrize(
    ("persona", "method", "path"),
    with_known_failures(CASES, KNOWN),
)
def test_responses_match_the_document(stack, api_schema, connection, persona, method, path):
    operation = api_schema[path][method]
    headers = stack.bearer(None if persona == "anonymous" else persona)
    failures: list[str] = []
    sent: list[int] = []
    modes = [(schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES)]
    if persona in NEGATIVE_PERSONAS:
        modes.append((schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))
    for mode, examples in modes:
        _explore(
            operation,
            mode,
            examples,
            base_url=stack.base_url,
            headers=headers,
            connection=connection,
            failures=failures,
            sent=sent,
        )
    if method != "GET":
        stack.keep_signed_in()
    assert sent, "no request was generated"
    assert not failures, f"{persona} {method} {path} on {stack.backend} ({replay_hint()}):\n" + (
        "\n".join(failures)
    )


def test_refusals_before_the_route_runs_are_documented():
    """An unreadable body (400) and a cross-site cookie request (403) never reach the route's
    own code, so only the document-wide additions can describe them."""
    for path, methods in openapi_document()["paths"].items():
        for method, operation in methods.items():
            answers = operation["responses"]
            if "requestBody" in operation:
                assert answers["400"]["description"] == "错误：bad_request", (method, path)
            by_cookie = {"APIKeyCookie": []} in operation.get("security", [])
            if by_cookie and method in ("post", "put", "patch", "delete"):
                assert "403" in answers, (method, path)
                assert answers["403"]["content"], (method, path)
