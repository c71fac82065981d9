# The verbs a newcomer types. Each builds .venv from the lock file when it is missing or stale.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
STAMP  := $(VENV)/.synced
UV     := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
BIN    := $(VENV)/bin
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy

help:
	@echo "make demo    the main job: replay flights through the feature pipeline on Airflow"
	@echo "make test    lint, DAG checks, unit, integration and end-to-end tests"
	@echo "make up      Airflow UI, scheduler and friends on the embedded stack (Ctrl-C stops)"
	@echo "make lint    ruff (with Airflow's AIR rules) and mypy"
	@echo "make parse   import every DAG file and report errors and timings"

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

# uv compiles bytecode at install: the machines set PYTHONDONTWRITEBYTECODE, and without .pyc
# files Airflow, Feast, MLflow and Great Expectations import 2-4x slower in every task.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/airloop demo

up: $(STAMP)
	$(BIN)/airloop up

lint: $(STAMP)
	$(BIN)/ruff check include dags tests feature_repo
	$(BIN)/ruff format --check include dags tests feature_repo
	$(BIN)/mypy

parse: $(STAMP)
	$(BIN)/python -m airloop.orchestration.parse

test: $(STAMP)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q tests

lock:
	$(UV) lock

clean:
	rm -rf .airloop

.PHONY: help venv demo up lint parse test lock clean
