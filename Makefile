# `make run` and `make test` are the two commands a fresh clone needs (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := stacklo/graphiql/vendor/.installed

.PHONY: install run test lint format pytest lock schema clean

# Exactly the versions in requirements.lock (hash-checked), then stacklo itself on top of them.
$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Re-pin every dependency (with hashes) after changing pyproject.toml.
lock: $(INSTALLED)
	$(BIN)/pip-compile --quiet --all-build-deps --extra dev --generate-hashes --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

# The API as served, committed: a change to it is a visible diff (a test checks they agree).
schema: $(INSTALLED)
	$(BIN)/stacklo schema > schema.graphql

# GraphiQL's bundles come from the npm registry at install time; they are never committed.
$(ASSETS): stacklo/graphiql/package.json stacklo/graphiql/package-lock.json
	npm ci --prefix stacklo/graphiql --no-audit --no-fund --loglevel=error
	touch $@

install: $(INSTALLED) $(ASSETS)

run: install
	$(BIN)/stacklo serve

lint: install
	$(BIN)/ruff check stacklo tests bench migrations
	$(BIN)/ruff format --check stacklo tests bench migrations
	$(BIN)/mypy stacklo

pytest: install
	$(BIN)/pytest

test: lint pytest

format: install
	$(BIN)/ruff format stacklo tests bench migrations
	$(BIN)/ruff check --fix stacklo tests bench migrations

clean:
	rm -rf $(VENV) stacklo/graphiql/node_modules stacklo/graphiql/vendor .mypy_cache .ruff_cache .pytest_cache
