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

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
