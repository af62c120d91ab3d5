# ebjr-triton: Energy-Based Joint Reasoning on NVIDIA Triton Inference Server.
#   make serve   set up what is missing, then serve model_repository/ (Ctrl-C or `make stop`)
#   make stop    stop the server on HTTP_PORT (default 8000); `make stop ALL=1` stops them all
#   make test    set up what is missing, then lint and run the tests against the real server
#   make unit    the unit tests only: seconds, no server (tests/unit)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCAN   := .venv-scan
REPO         ?= model_repository
HOST         ?= 127.0.0.1
HTTP_PORT    ?= 8000
GRPC_PORT    ?= 8001
METRICS_PORT ?= 8002

.PHONY: help venv backend data perf-deps monitoring-deps remote-repos serve stop models teacher-study eval bench overload audit faults tune load soak test unit lint scan scan-deps format clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'
	@echo "make backend build Triton's native ONNX Runtime backend (cached) -> build/"
	@echo "make models  retrain the Teacher, candidate Students, detectors and regressors, rebuild $(REPO)/ (THREE_STAGE=1: 3 stages)"
	@echo "make teacher-study  train and compare the Teacher recipes -> evaluation/teacher_study.json"
	@echo "make remote-repos  the edge/cloud layout: build/remote/{cascade,teacher}"
	@echo "make eval    offline evaluation + plots -> evaluation/EVALUATION.md"
	@echo "make bench   perf_analyzer benchmark on the real server -> BENCHMARKS.md"
	@echo "make overload  open-loop arrivals at 0.5-3x capacity, bounded vs unbounded queue -> OVERLOAD.md"
	@echo "make faults    a local and a remote Teacher stopped mid-load: deadline, breaker -> FAULTS.md"
	@echo "make audit   the live audit: its cost, and the shipped alert on clean and noisy traffic -> AUDIT.md"
	@echo "make tune    router serving variants measured side by side -> TUNING.md"
	@echo "make load    Locust, headless, HTTP + gRPC users, 60 s -> build/load/"
	@echo "make soak    Locust for 5 minutes with a memory check -> soak/REPORT.md"
	@echo "make lint    ruff check + format check + import contracts;  make format  apply ruff formatting"
	@echo "make scan    checkov on deploy/kubernetes/, bandit on ebjr/ (both must find nothing)"

venv: $(STAMP)

# Idempotent: reinstalls only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# checkov and bandit, in a venv of their own (requirements-scan.txt says why).
scan-deps: $(SCAN)/.installed

$(SCAN)/.installed: requirements-scan.txt
	test -x $(SCAN)/bin/python || $(PYTHON) -m venv $(SCAN)
	$(SCAN)/bin/python -m pip install -q -r requirements-scan.txt
	touch $@

# The manifests (checkov) and the package (bandit), with every finding printed.
scan: scan-deps
	$(SCAN)/bin/checkov -d deploy/kubernetes --framework kubernetes --compact --quiet
	$(SCAN)/bin/bandit -q -r ebjr -c pyproject.toml

# Triton's native ONNX Runtime backend, from third_party/ (cached behind a stamp; installs
# rapidjson-dev and googletest when run as root, else prints the apt-get line).
backend: venv
	$(BIN)/python -m ebjr.ops.native_backend

data: venv
	$(BIN)/python -c "from ebjr.training.data import data_dir; print('Fashion-MNIST in', data_dir())"

# perf_analyzer (inside the tritonclient wheel) needs Debian's libb64.
perf-deps:
	@ldconfig -p | grep -q libb64.so.0d || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q libb64-0d; \
		else echo "perf_analyzer needs libb64-0d: sudo apt-get install libb64-0d"; exit 1; fi; }

serve: venv backend
	$(BIN)/python -m ebjr.ops.server --model-repository $(REPO) --host $(HOST) \
		--http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) \
		$(if $(UNRESTRICTED),--unrestricted)

# The server on HTTP_PORT (one pid file per server in .run/); ALL=1: every server from here.
stop: venv
	@$(BIN)/python -m ebjr.ops.pidfile --http-port $(HTTP_PORT) $(if $(ALL),--all)

models: venv data
	$(BIN)/python -m ebjr.tasks.classification.train --out $(REPO) $(if $(THREE_STAGE),--three-stage)
	$(BIN)/python -m ebjr.tasks.detection.train --out detection_models
	$(BIN)/python -m ebjr.tasks.detection.repository --out $(REPO)
	$(BIN)/python -m ebjr.tasks.regression.train --out regression_models
	$(BIN)/python -m ebjr.tasks.regression.repository --out $(REPO)

# Which Teacher recipe `make models` trains (checkpointed under build/models: it resumes).
teacher-study: venv data
	$(BIN)/python -m ebjr.tasks.classification.teacher_study

# The edge/cloud layout of $(REPO): build/remote/cascade (Student + router, Teacher called at
# REMOTE_TEACHER over gRPC) and build/remote/teacher (the Teacher alone, for another server).
REMOTE_TEACHER ?= 127.0.0.1:9001
remote-repos: venv data
	$(BIN)/python -m ebjr.tasks.classification.repository --student $(REPO)/student/1/model.onnx \
		--teacher $(REPO)/teacher/1/model.onnx --gates $(REPO)/ebjr_router/gate.onnx \
		--val-data fashion-mnist:val --out build/remote/cascade \
		--remote-teacher $(REMOTE_TEACHER) --teacher-out build/remote/teacher

eval: venv data
	$(BIN)/python -m ebjr.tasks.classification.report --repo $(REPO) --out evaluation
	$(BIN)/python -m ebjr.tasks.detection.evaluate --models detection_models --out evaluation/DETECTION.md
	$(BIN)/python -m ebjr.tasks.regression.evaluate --models regression_models --out evaluation/REGRESSION.md

bench: venv backend data perf-deps
	$(BIN)/python -m ebjr.bench.benchmark --repo $(REPO)

overload: venv backend data perf-deps
	$(BIN)/python -m ebjr.bench.overload --repo $(REPO)

audit: venv backend data perf-deps monitoring-deps
	$(BIN)/python -m ebjr.bench.audit --out AUDIT.md

faults: venv backend data
	$(BIN)/python -m ebjr.bench.faults --repo $(REPO)

tune: venv backend data perf-deps
	$(BIN)/python -m ebjr.bench.tuning --repo $(REPO)

USERS ?= 8
P95_MS ?= 1000
load: venv backend data
	$(BIN)/python load_tests/run.py --repo $(REPO) --users $(USERS) --run-time 60s \
		--p95-ms $(P95_MS) --out build/load

soak: venv backend data
	$(BIN)/python load_tests/run.py --repo $(REPO) --users $(USERS) --run-time 5m \
		--p95-ms $(P95_MS) --check-memory --out soak

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The dashboard test runs a real Prometheus (Debian's package).
monitoring-deps:
	@command -v prometheus >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
		else echo "the dashboard test needs Prometheus: sudo apt-get install prometheus"; exit 1; fi; }

test: venv backend data perf-deps monitoring-deps scan-deps lint
	$(BIN)/python -m pytest -v

unit: venv data
	$(BIN)/python -m pytest -q tests/unit

clean:
	rm -rf build .run python_backend/backends .pytest_cache .ruff_cache $(SCAN)
