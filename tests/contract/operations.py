"""The operations of /openapi.json, known when tests are collected, and the error envelope
every 4xx of the API carries."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest


@cache
def openapi_document() -> dict[str, Any]:
    from backend.main import create_app

    return create_app().openapi()


def operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every documented operation, in document order."""
    return [
        (method.upper(), path)
        for path, methods in openapi_document()["paths"].items()
        for method in methods
    ]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    components = openapi_document()["components"]["schemas"]
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def with_known_failures(cases: list[tuple], known: dict[tuple, str]) -> list:
    """`cases` as params, each known failure marked strict xfail with its reason.

    A key of `known` is a case, or a case with "*" in place of its first element (any persona).
    """
    params = []
    for case in cases:
        reason = known.get(case) or known.get(("*", *case[1:]))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(*case, marks=marks, id=" ".join(str(c) for c in case)))
    return params


def assert_error_envelope(response) -> None:
    """A 4xx of the API is the one error envelope: a stable code and a Chinese message."""
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), response.text[:300]
    assert isinstance(error.get("code"), str) and error["code"], response.text[:300]
    assert isinstance(error.get("message"), str) and error["message"], response.text[:300]
