"""Fixtures of the bot tests: `linli bot` as real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture
def start_bot(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `linli bot` processes; whatever a test leaves running is stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str]) -> subprocess.Popen:
        log = open(tmp_path / f"bot-{len(started)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "bot"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
