# Two commands for a fresh machine (Python 3.11, Node 20, git):
#   make demo   sets up .venv and runs `shapelens check samples/`
#   make test   sets up .venv and runs every test (lint included)
# For the inner loop: `make test-fast` (lint, pytest and the client's unit tests, no real editor).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench measurements realworld clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The samples contain deliberate mismatches, so `check` exits 1 there; only 2 (a usage or
# environment error) fails the demo.
demo: $(STAMP)
	$(VENV)/bin/shapelens check samples/ || [ $$? -eq 1 ]

# --- VS Code extension (package.json, client/) ---------------------------------------------------
NPM ?= npm
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $(NODE_STAMP)

.PHONY: client-test e2e

# Type-check, bundle, and the TypeScript unit tests (node's test runner).
client-test: $(NODE_STAMP)
	$(NPM) run build
	$(NPM) run test:unit

# The packaged extension in a real VS Code (code-server + headless chromium, cached under
# $XDG_CACHE_HOME/shapelens-e2e, default ~/.cache/shapelens-e2e): trusted and Restricted-Mode runs.
e2e: $(STAMP) $(NODE_STAMP)
	$(NPM) run build
	$(NPM) run package
	$(NPM) run test:e2e

test: lint client-test e2e
	$(PY) -m pytest -q

test-fast: lint client-test
	$(PY) -m pytest -q

# ruff and mypy as configured in pyproject.toml; the client is type-checked by tsc in strict mode
# (tsconfig.json: strict, noUnusedLocals/Parameters, noImplicitReturns, noFallthroughCasesInSwitch),
# which is its lint. Never `ruff format`: the tree is not mass-reformatted.
lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(NPM) run typecheck

# Speed and memory targets, measured (torchinfo is a benchmark-only dependency). Prints a table
# and writes bench/results.json.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# BENCH_ARGS: e.g. --corpus DIR --corpus-python PY (the real-model-files row), --quick, --only users
bench: $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/measurements.py

# Reach on real, unmodified model files (bench/realworld.py). The corpus lives outside this
# repository; docs/realworld.md says how to build it. Not part of `make test`: minutes, not seconds.
REALWORLD_PYTHON ?= /work/scratch/corpus/bin/python
REALWORLD_CORPUS ?= /work/scratch/realworld
realworld: $(STAMP)
	$(PY) bench/realworld.py --python $(REALWORLD_PYTHON) --corpus $(REALWORLD_CORPUS) $(REALWORLD_ARGS)

# docs/measurements.md from bench/results.json and bench/measurements.md.in
measurements:
	$(PYTHON) bench/measurements.py

clean:
	rm -rf $(VENV) .pytest_cache bundled/libs
