# Quorum — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SERVICES := $(sort $(dir $(wildcard services/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: help deps install run up down restart replay test test-py sidecar-test sidecar-fuzz codec-asan lint bench kafka-up kafka-down kafka-status \
	dockerfiles helm k8s alerts-test dashboards images clean

help: ## List the targets with what they do
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

deps: ## Install the missing system packages (Java, Maven, C++ toolchain, GoogleTest, clang)
	bash deploy/system-deps.sh

$(STAMP): constraints.txt libs/common/pyproject.toml libs/common/setup.py libs/common/csrc/avrofast.cc \
		$(wildcard services/*/pyproject.toml) services/risk_sidecar/client/pyproject.toml
	test -d $(VENV) || $(PYTHON_BIN) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e libs/common $(addprefix -e ,$(SERVICES)) \
		-e services/risk_sidecar/client pytest pytest-timeout ruff httpx httpx2 kubernetes-validate
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install every package (pinned by constraints.txt)

WINDOW_FLAGS = $(if $(MANDATE),--mandate $(MANDATE),) $(if $(START),--start $(START),) $(if $(END),--end $(END),) \
	$(if $(WARMUP),--warmup $(WARMUP),)

run: install ## The main job: the embedded desk on bundled real data; writes reports/<run id>/ (MANDATE=file, RESUME_AFTER_DAYS=n, START=date, END=date, WARMUP=days)
	$(PY) -m quorum_desk.app run $(WINDOW_FLAGS) $(if $(RESUME_AFTER_DAYS),--resume-after-days $(RESUME_AFTER_DAYS),)

up: install ## Local broker + every service as its own process (admin API on :18000), then a lockstep replay (MANDATE=file, START=date, END=date, WARMUP=days, FOLLOW=1)
	$(PY) -m quorum_desk.app up $(WINDOW_FLAGS) $(if $(FOLLOW),--follow,)

replay: install ## Replay a recorded window through a fresh desk and compare: make replay ARGS="--from 2006-09-01 --to 2006-11-30"
	$(VENV)/bin/quorum-desk replay $(ARGS)

restart: install ## Stop one service `make up` started and start it again, which rebuilds its engine: make restart SERVICE=portfolio [KILL=1]
	$(PY) -m quorum_desk.app restart $(SERVICE) $(if $(KILL),--kill)

down: install ## Stop everything `make up` started
	$(PY) -m quorum_desk.app down

kafka-up: install ## Fetch (once) and start the local single-node KRaft broker; create every topic
	$(PY) -m quorum_common.kafka_local up

kafka-down: install ## Stop the local broker (`make kafka-down PURGE=1` also deletes its data)
	$(PY) -m quorum_common.kafka_local down $(if $(PURGE),--purge,)

kafka-status: install ## Tell whether the local broker answers
	$(PY) -m quorum_common.kafka_local status

lint: install ## ruff over every Python file
	$(VENV)/bin/ruff check .

alerts-test: ## promtool check and unit tests of the alert rules
	promtool check rules deploy/helm/quorum/alerts/quorum-alerts.yaml
	promtool test rules deploy/prometheus/alerts-test.yaml

dashboards: install ## Regenerate the Grafana dashboards (then `make k8s`)
	$(PY) deploy/prometheus/dashboards.py

images: install ## Build every container image (local Debian base) and prove each starts, answers /healthz and joins the broker
	bash deploy/images/build-all.sh $(IMAGES)

helm: ## Install the pinned Helm into .cache/bin (built through the Go module proxy; once, ~3-6 min)
	bash deploy/tools/install-helm.sh >/dev/null

k8s: helm ## Render deploy/k8s/quorum.yaml from the Helm chart (default values)
	HELM=.cache/bin/helm bash deploy/tools/render-k8s.sh

test-py: install helm ## Python tests (starts the local broker when none runs)
	$(PY) -m pytest -q

sidecar-test: ## Build the C++ risk sidecar and run its GoogleTest suite
	bash services/risk_sidecar/scripts/test.sh

codec-asan: install ## The Avro codec's C++ fast path under AddressSanitizer + UBSan with many corrupt messages
	bash libs/common/scripts/asan.sh

sidecar-fuzz: ## Fuzz the sidecar's frame parser (FUZZ_SECONDS, default 20)
	bash services/risk_sidecar/scripts/fuzz.sh

dockerfiles: install ## Render every Python service's Dockerfile from deploy/docker/service.Dockerfile.tmpl
	$(PY) deploy/docker/render.py

test: deps install lint sidecar-test sidecar-fuzz codec-asan test-py ## Install everything from nothing and run every test
	@echo "all tests passed"

bench: install ## Benchmarks; results in bench/results/*.json
	$(PY) bench/run.py
	bash services/risk_sidecar/scripts/bench.sh

clean: ## Remove the virtualenv, build outputs and broker data
	rm -rf $(VENV) build .kafka
