# Two commands for a fresh machine (Python 3.11, Node 20, git):
#   make demo   sets up .venv and runs `shapelens check samples/`
#   make test   sets up .venv and runs every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

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

test: $(STAMP) client-test e2e
	$(PY) -m pytest -q

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

# Speed and memory targets, measured (torchinfo is a benchmark-only dependency). Prints a table
# and writes bench/results.json.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/run.py --markdown docs/performance.md

clean:
	rm -rf $(VENV) .pytest_cache
