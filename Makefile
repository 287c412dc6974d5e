PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-cluster schemathesis bench-engine bench-journal bench-http bench-sweep bench-streams peers clean load soak bench-recovery bench-history

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The client package (client/) too: the tests and examples/ drive the service through it.
$(STAMP): pyproject.toml client/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]' -e ./client
	touch $(STAMP)

# exec: the service replaces the recipe's shell, so make's signals reach it directly.
run: $(STAMP)
	exec $(VENV)/bin/order-service serve

test: $(STAMP)
	$(PY) -m pytest

# Several Ray nodes and gateway processes on this machine (also part of `make test`; a few minutes).
test-cluster: $(STAMP)
	$(PY) -m pytest -m cluster tests/cluster

# `schemathesis run --checks all` over every route (user, admin and key-rotation passes) of a service of
# its own, 200 examples per operation (the suite runs the same with 25); config in schemathesis.toml.
schemathesis: $(STAMP)
	SCHEMATHESIS_EXAMPLES=200 $(PY) -m pytest -q -s tests/e2e/test_schemathesis_cli.py

# The benchmarks' own tools (matplotlib for plots, py-spy for profiles), over the dev extras.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The published peers the benchmarks compare against, in bench/.peers/ (git-ignored).
peers:
	bash bench/peers/setup.sh

# The HTTP service against a no-op FastAPI, matching-engine's own gateway and (BENCH_ARGS="--baseline REF")
# an older revision of itself, one run; and latency percentiles vs offered load, plotted into bench/plots/.
BENCH_ARGS ?=
bench-http: $(BENCH_STAMP) peers
	$(PY) bench/http_bench.py $(BENCH_ARGS)

bench-sweep: $(BENCH_STAMP) peers
	$(PY) bench/latency_sweep.py $(BENCH_ARGS)

# WebSocket fan-out: the single-order load with no stream subscribers and with 500 (5 never reading), paired in
# one run; req/s and p99 of each, slow readers closed with 1013, and the delay from a trade's ack to its frame.
bench-streams: $(STAMP)
	$(PY) bench/stream_bench.py $(BENCH_ARGS)

bench-engine: $(STAMP)
	$(PY) bench/engine_bench.py

bench-journal: $(STAMP)
	$(PY) bench/journal_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Locust, headless, against a service that is already running (`make run` in another shell).
# The admin token: $ORDER_SERVICE_ADMIN_TOKEN, else data/admin_token. Reports go to bench/results/.
LOAD_HOST ?= http://127.0.0.1:8000
LOAD_TIME ?= 60s
LOAD_USERS ?= 50
LOAD_SPAWN_RATE ?= 10
LOAD_RESULTS ?= bench/results

load: $(STAMP)
	mkdir -p $(LOAD_RESULTS)
	$(VENV)/bin/locust -f bench/locustfile.py --headless --host $(LOAD_HOST) \
		--users $(LOAD_USERS) --spawn-rate $(LOAD_SPAWN_RATE) --run-time $(LOAD_TIME) --stop-timeout 10 \
		--csv $(LOAD_RESULTS)/load --csv-full-history --html $(LOAD_RESULTS)/load.html --only-summary

# Soak: starts its own service (temp data dir, fsync on), runs locust for SOAK_TIME with steady traffic,
# reports throughput over time, errors (must be 0), latency, each process's memory against a bound,
# then stops the service and runs `order-service verify` on its data. Results: bench/results/soak/.
SOAK_TIME ?= 5m
SOAK_USERS ?= 50

soak: $(STAMP)
	$(PY) bench/soak.py --duration $(SOAK_TIME) --users $(SOAK_USERS)

# Recovery time of 1,000,000 journaled events: offline verify, and the service's cold start to ready.
bench-recovery: $(STAMP)
	$(PY) bench/recovery_bench.py

# Hot state and history: memory per order placed, recovery time loaded vs empty, history reads (bench/README.md).
HISTORY_ORDERS ?= 300000
bench-history: $(STAMP)
	$(PY) bench/history_bench.py --orders $(HISTORY_ORDERS)
