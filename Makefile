# Quorum — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SERVICES := $(sort $(dir $(wildcard services/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: help install run demo test test-py test-sidecar lint bench kafka-up kafka-down kafka-status clean

help: ## List the targets with what they do
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): constraints.txt libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)
	@command -v $(PYTHON_BIN) >/dev/null || PYTHON_BIN=python3; test -d $(VENV) || $${PYTHON_BIN:-python3} -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e libs/common $(addprefix -e ,$(SERVICES)) pytest pytest-timeout ruff httpx
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install every package (pinned by constraints.txt)

run: install ## The main job: push bundled real bars through ingest and alpha on the in-process bus
	$(PY) -m quorum_desk.app

demo: run ## Same as `make run`

kafka-up: install ## Fetch (once) and start the local single-node KRaft broker; create every topic
	$(PY) -m quorum_common.kafka_local up

kafka-down: install ## Stop the local broker (`make kafka-down PURGE=1` also deletes its data)
	$(PY) -m quorum_common.kafka_local down $(if $(PURGE),--purge,)

kafka-status: install ## Tell whether the local broker answers
	$(PY) -m quorum_common.kafka_local status

lint: install ## ruff over every Python file
	$(VENV)/bin/ruff check libs services tests bench

test-py: install ## Python tests (starts the local broker when none runs)
	$(PY) -m pytest -q

test: install lint test-py ## Install everything and run every test
	@echo "all tests passed"

bench: install ## Benchmarks; results in bench/results/*.json
	$(PY) bench/run.py

clean: ## Remove the virtualenv, build outputs and broker data
	rm -rf $(VENV) build .kafka
