"""One demo stack per backend for the whole of tests/contract, and the seed in the header."""

from __future__ import annotations

import pytest

from tests.conftest import _backends
from tests.contract.stack import replay_hint, serve_demo

stack = pytest.fixture(scope="package", params=_backends(), name="stack")(serve_demo)


def pytest_report_header() -> str:
    return f"contract fuzz: {replay_hint()}"
