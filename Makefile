# ebjr-triton: Energy-Based Joint Reasoning on NVIDIA Triton Inference Server.
#   make serve   set up what is missing, then serve model_repository/ (Ctrl-C or `make stop`)
#   make test    set up what is missing, then lint and run the tests against the real server
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REPO         ?= model_repository
HOST         ?= 127.0.0.1
HTTP_PORT    ?= 8000
GRPC_PORT    ?= 8001
METRICS_PORT ?= 8002

.PHONY: help venv data serve stop models test lint format clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'
	@echo "make models  retrain Student and Teacher on Fashion-MNIST and rebuild $(REPO)/"
	@echo "make lint    ruff check + format check;  make format  apply ruff formatting"

venv: $(STAMP)

# Idempotent: reinstalls only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

data: venv
	$(BIN)/python -c "from ebjr.data import data_dir; print('Fashion-MNIST in', data_dir())"

serve: venv
	$(BIN)/python -m ebjr.server --model-repository $(REPO) --host $(HOST) \
		--http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

stop:
	@if [ -f .run/tritonserver.pid ]; then kill -TERM $$(cat .run/tritonserver.pid) && echo "stopped"; \
	else echo "no server started by make serve is running"; fi

models: venv data
	$(BIN)/python -m ebjr.train --out $(REPO)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv data lint
	$(BIN)/python -m pytest -v

clean:
	rm -rf build .run python_backend/backends .pytest_cache .ruff_cache
