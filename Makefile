# rlr: every install step lives here, so a fresh clone needs only `make demo` / `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-slow lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall when the dependency list changes. torch is bounded in pyproject so pip takes the CPU wheel on disk.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,code]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -x --timeout 600 -p no:cacheprovider

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --timeout 1200

lint: $(STAMP)
	$(BIN)/ruff check rlr tests
	$(BIN)/ruff format --check rlr tests || true

bench: $(STAMP)
	$(BIN)/python tests/bench/run_all.py

# The offline quickstart: build the tiny model, then prepare-data -> sft -> evaluate -> train-rl -> evaluate -> export.
demo: $(STAMP)
	$(BIN)/rlr quickstart

clean:
	rm -rf runs .pytest_cache
