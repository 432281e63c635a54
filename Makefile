# Two entry points for a fresh machine: `make run` (install + start the app) and `make test` (install + check everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export HF_HUB_DISABLE_TELEMETRY = 1
export GRADIO_ANALYTICS_ENABLED = False
export ANONYMIZED_TELEMETRY = False

.PHONY: install install-dev browser run test lint typecheck pytest evals bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is installed first and pinned: the CPU build lies on this machine's disk, an open range pulls CUDA.
install: $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[local]"

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[local,dev]"

# The UI tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

run: install
	$(BIN)/copilot ui

lint:
	$(BIN)/ruff check copilot tests benchmarks setup.py
	$(BIN)/ruff format --check copilot tests benchmarks setup.py

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest -q -p no:cacheprovider

evals:
	$(BIN)/copilot eval --suite checker --suite retrieval --suite drafts --limit 9

test: install-dev browser lint typecheck pytest evals

bench:
	$(BIN)/python benchmarks/retrieval_bench.py
	$(BIN)/python benchmarks/checker_bench.py
	$(BIN)/python benchmarks/llm_bench.py
