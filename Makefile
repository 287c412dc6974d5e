PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench-engine bench-journal clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/order-service serve

test: $(STAMP)
	$(PY) -m pytest

bench-engine: $(STAMP)
	$(PY) bench/engine_bench.py

bench-journal: $(STAMP)
	$(PY) bench/journal_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
