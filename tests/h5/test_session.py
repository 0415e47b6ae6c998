"""`next` after login: only paths of the H5 pages, never another site."""

from __future__ import annotations

import pytest

from h5.session import safe_next


@pytest.mark.parametrize("value", ["/h5/", "/h5/me", "/h5/me?saved=1", "/h5/wishes/3#top", "/h5"])
def test_local_pages_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example/h5/",
        "//evil.example/h5/",
        "///evil.example/h5/",
        "/\\evil.example/h5/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "h5/me",
        "/h5evil",
        "/api/v1/me",
        "/h5/\nLocation: https://evil.example",
        "/h5/" + "a" * 600,
    ],
)
def test_anything_else_goes_home(value: str | None) -> None:
    assert safe_next(value) == "/h5/"
