# The two commands of the README: `make demo` runs the product, `make test` runs every test.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint services bench

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

PORT ?= 8000

demo: $(VENV)/.installed
	$(VENV)/bin/cellabel demo --port $(PORT)

services:
	@bash scripts/ensure-services.sh

# Everything on PostgreSQL + Redis + a Celery worker, then the browser and end-to-end suites
# again on the embedded stack `cellabel demo` runs (SQLite, local media, folder broker).
EMBEDDED_TESTS ?= tests/browser tests/e2e

test: lint services
	$(PY) -m pytest $(PYTEST_ARGS)
	CELLABEL_TEST_STACK=embedded $(PY) -m pytest $(EMBEDDED_TESTS) $(PYTEST_ARGS)

# Lint: style, strict types, the layers (import-linter contracts in pyproject.toml) and one
# concept per module (scripts/module-sizes.py); docs/architecture.md explains the picture.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/module-sizes.py
