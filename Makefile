# 邻里 Linli — developer commands. Everything runs from a virtualenv in .venv.
#   make run        demo on http://127.0.0.1:8000 (SQLite under ./var/, bot in-process, no Redis)
#   make test       ruff, import-linter and the whole pytest suite, in parallel
#   make test-fast  the same checks on SQLite only, without the browser and multi-process tests

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Stamps make pip run again only when pyproject.toml is newer than the last install.
RUN_STAMP := $(VENV)/.linli-installed
DEV_STAMP := $(VENV)/.linli-dev-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

# pytest-xdist workers (each with its own databases); `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup
# What `make test-fast` leaves out: Chromium, `linli` subprocesses and long runs, and every
# test that needs PostgreSQL or Redis (their URLs are unset for it, so nothing reaches them).
FAST := -m "not slow and not browser and not postgres and not redis"

HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint fmt bench migrations constraints clean install install-dev

run: $(RUN_STAMP)
	$(BIN)/linli run --host $(HOST) --port $(PORT)

test: lint
	$(PYTEST)

test-fast: lint
	env -u LINLI_TEST_DATABASE_URL -u LINLI_TEST_REDIS_URL -u CI $(PYTEST) -q $(FAST)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

fmt: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(RUN_STAMP)
	$(BIN)/python -m tests.bench.bench_api

migrations: $(RUN_STAMP)
	$(BIN)/tortoise -c backend.tortoise_config.TORTOISE_ORM makemigrations

# The pinned set the image installs: a fresh virtualenv with only the runtime dependencies.
constraints:
	rm -rf build/constraints-venv
	$(PYTHON) -m venv build/constraints-venv
	build/constraints-venv/bin/pip install --disable-pip-version-check -q .
	{ echo '# What the image installs, pinned: `pip install -c deploy/constraints.txt .` (deploy/Dockerfile).'; \
	  echo '# Regenerate after a dependency change in pyproject.toml: make constraints'; \
	  build/constraints-venv/bin/pip freeze --disable-pip-version-check --exclude linli; \
	} > deploy/constraints.txt
	rm -rf build/constraints-venv

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

# The dev install is a superset of the runtime one, so it refreshes both stamps.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@ $(RUN_STAMP)

# Build output, caches and the local demo database; `rm -rf .venv` for a full reset.
clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .import_linter_cache tests/artifacts
	rm -f var/linli.sqlite3 var/linli.sqlite3-shm var/linli.sqlite3-wal
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
