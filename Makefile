# `make run` and `make test` are the two commands a fresh clone needs (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := stacklo/graphiql/vendor/.installed
CLIENTS := tests/clients/node_modules/.installed
# Where `make run` listens: `make run PORT=8080`, `make run HOST=0.0.0.0`.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format pytest lock schema clean browser bench wrk soak faults fuzz faults-long

# Exactly the versions in requirements.lock (hash-checked), then stacklo itself on top of them.
$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Re-pin every dependency (with hashes) after changing pyproject.toml.
lock: $(INSTALLED)
	$(BIN)/pip-compile --quiet --all-build-deps --extra dev --extra bench --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml

# The API as served, committed: a change to it is a visible diff (a test checks they agree).
schema: $(INSTALLED)
	$(BIN)/stacklo schema > schema.graphql

# GraphiQL's bundles come from the npm registry at install time; they are never committed.
$(ASSETS): stacklo/graphiql/package.json stacklo/graphiql/package-lock.json
	npm ci --prefix stacklo/graphiql --no-audit --no-fund --loglevel=error
	touch $@

# The real clients the test suite drives (Apollo Client, graphql-http, playwright-core).
$(CLIENTS): tests/clients/package.json tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium for the browser tests: the distribution's package, installed if missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ echo "installing chromium (browser tests)"; \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

install: $(INSTALLED) $(ASSETS)

# Every benchmark in a row (about 10 minutes on 2 cores; not part of `make test`): figures to
# bench/results/<time>-<commit>.json, the chart to bench/results/latest.png.
# Options: `make bench BENCH_ARGS="--quick --only credit"`. wrk is the distribution's package.
BENCH_ARGS ?=
FUZZ_EXAMPLES ?= 2000
SOAK_ARGS ?=
bench: install wrk
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

# The load generator of the benchmarks and the soak: the distribution's package.
wrk:
	@command -v wrk >/dev/null 2>&1 || \
		{ echo "installing wrk (benchmarks)"; \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq wrk >/dev/null; }

# Half of the peak transfer rate for 10 minutes with 200 subscribers connected: exits non-zero
# when memory, descriptors, connections or p99 trend upwards, or an event is lost.
# `make soak SOAK_ARGS=--quick` checks it in a few minutes.
soak: install wrk
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# The fault suite alone (also part of `make test`), with the figures of every scenario summed up.
FAULT_REPORT := .pytest_cache/faults.jsonl
faults: install
	@mkdir -p .pytest_cache && rm -f $(FAULT_REPORT)
	STACKLO_FAULT_REPORT=$(FAULT_REPORT) $(BIN)/pytest tests/faults -q
	$(BIN)/python -m tests.faults.summary $(FAULT_REPORT)

# Operations generated from the schema for every root field, at length (about 15 minutes at
# 2,000 per caller and kind; `make test` runs a short sequence). Not part of `make test`.
fuzz: install
	@mkdir -p .pytest_cache && rm -f $(FAULT_REPORT)
	STACKLO_FAULT_REPORT=$(FAULT_REPORT) STACKLO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/pytest tests/faults/test_fuzz.py -q -s
	$(BIN)/python -m tests.faults.summary $(FAULT_REPORT)

# The long runs, one after the other: `make fuzz`, then `make soak`.
faults-long: fuzz soak

run: install
	$(BIN)/stacklo serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check stacklo tests bench migrations
	$(BIN)/ruff format --check stacklo tests bench migrations
	$(BIN)/mypy stacklo

pytest: install $(CLIENTS) browser
	$(BIN)/pytest

test: lint pytest

format: install
	$(BIN)/ruff format stacklo tests bench migrations
	$(BIN)/ruff check --fix stacklo tests bench migrations

clean:
	rm -rf $(VENV) stacklo/graphiql/node_modules stacklo/graphiql/vendor tests/clients/node_modules \
		.mypy_cache .ruff_cache .pytest_cache
