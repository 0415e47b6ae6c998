"""The dependency direction of DESIGN.md and CONTRIBUTING.md (h5 → backend, bot → backend,
never back; the domains' layers; no import loop inside a package), checked by import-linter
with the contracts in pyproject.toml, and no module past the size one can read at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_tree(tmp_path: Path) -> None:
    for package in ("backend", "h5", "bot"):
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "templates", "static", "migrations"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")


def _tree_with(tmp_path: Path, module: str, source: str) -> subprocess.CompletedProcess:
    """import-linter on a copy of the tree with one module added."""
    _copy_tree(tmp_path)
    (tmp_path / module).write_text(source)
    return _lint_imports(tmp_path)


# Control cases: the same contracts on a copy of the tree with one forbidden import must
# fail, otherwise the test above proves nothing.


def test_a_backend_module_importing_h5_breaks_the_contract(tmp_path: Path):
    result = _tree_with(tmp_path, "backend/core/leak.py", "import h5.routes  # noqa: F401\n")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "backend.core.leak -> h5.routes" in result.stdout


def test_a_lower_domain_importing_a_higher_one_breaks_the_layers(tmp_path: Path):
    result = _tree_with(
        tmp_path, "backend/points/leak.py", "import backend.party.models  # noqa: F401\n"
    )
    assert result.returncode != 0
    assert "backend.points.leak -> backend.party.models" in result.stdout


def test_siblings_on_one_layer_may_not_import_each_other(tmp_path: Path):
    result = _tree_with(
        tmp_path, "backend/wishes/leak.py", "import backend.activities.models  # noqa: F401\n"
    )
    assert result.returncode != 0
    assert "backend.wishes.leak -> backend.activities.models" in result.stdout


def test_an_import_loop_inside_a_package_breaks_the_contract(tmp_path: Path):
    _copy_tree(tmp_path)
    (tmp_path / "backend/orgs/leak.py").write_text("import backend.orgs.service  # noqa: F401\n")
    (tmp_path / "backend/orgs/service.py").write_text(
        (ROOT / "backend/orgs/service.py").read_text() + "\nimport backend.orgs.leak  # noqa\n"
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "No cycles are allowed in backend.orgs" in result.stdout


MAX_MODULE_LINES = 700


def test_no_module_is_past_what_one_can_read_at_once():
    long = {
        str(path.relative_to(ROOT)): lines
        for package in ("backend", "h5", "bot")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these by concern (CONTRIBUTING.md): {long}"
