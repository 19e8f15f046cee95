# The two commands: `make run` serves the API, `make test` runs the whole suite (lint included).
# Both install what is missing first: Poetry (into .tools/poetry) and the locked dependencies.
# `make dev` is the Flask development server (reloader, debugger) for editing the code.
SHELL := /bin/bash
PYTHON ?= python3
POETRY_VERSION := 2.5.1
POETRY_HOME := .tools/poetry
POETRY ?= $(shell command -v poetry 2>/dev/null || echo $(POETRY_HOME)/bin/poetry)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app auth_microservice_app.app
export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_NO_INTERACTION := 1

.PHONY: run dev test install test-tools lint typecheck pytest migrate lint-infra audit bench clean

# gunicorn with gunicorn.conf.py, as the image runs it: several workers, /metrics summed over
# them. In development (the default) gunicorn.conf.py reads .env, listens on 127.0.0.1:5000
# and caps the workers at 4; migrate has already made the development signing key.
run: install migrate ## Serve on $HOST:$PORT (default 127.0.0.1:5000) under gunicorn, embedded defaults
	$(BIN)/gunicorn -c gunicorn.conf.py auth_microservice_app.wsgi:app

# Werkzeug's server: reloads on code changes, the interactive debugger on errors. /metrics is
# served there too (DEBUG_METRICS: prometheus-flask-exporter leaves it out under the reloader).
dev: install migrate ## The development server: reloader and debugger on $HOST:$PORT
	DEBUG_METRICS=1 $(BIN)/python -m auth_microservice_app.app

test: install test-tools lint typecheck pytest ## ruff, mypy and pytest against real services

install: $(VENV)/.installed

$(POETRY_HOME)/bin/poetry:
	$(PYTHON) -m venv $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install --quiet "poetry==$(POETRY_VERSION)" "poetry-plugin-export==1.10.1"

$(VENV)/.installed: pyproject.toml poetry.lock | $(POETRY)
	$(POETRY) sync
	touch $@

OIDC_PROVIDER := tests/oidc_provider
test-tools: $(OIDC_PROVIDER)/node_modules/.package-lock.json ## what the tests drive besides Python
	bash scripts/install-test-tools.sh

# A real OpenID provider (npm oidc-provider) that the OAuth tests run on loopback.
$(OIDC_PROVIDER)/node_modules/.package-lock.json: $(OIDC_PROVIDER)/package-lock.json
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund

migrate: install
	$(FLASK) db upgrade heads

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

lint-infra: install ## Dockerfile, Kubernetes, Terraform and shell scripts, checked offline
	bash scripts/lint-infra.sh

audit: install ## Dependency and image vulnerability scans (say plainly when they cannot run offline)
	bash scripts/audit.sh

BENCH_ARGS ?= --users 10000
bench: install ## the load benchmark beside its ceilings (bench/README.md); writes bench/results/
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
