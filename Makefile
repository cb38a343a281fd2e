# One command runs what CI runs. Works on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test lint bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/agenthq run examples/ship-it.yaml -p python=$(BIN)/python

lint: install
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/spawner_bench.py
	$(BIN)/python benchmarks/durable_floor.py
	$(BIN)/python benchmarks/serve_bench.py
	$(BIN)/python benchmarks/long_running.py
	$(BIN)/python benchmarks/workers_bench.py
	$(BIN)/python benchmarks/ml_bench.py

eval: install
	$(BIN)/python benchmarks/eval.py

clean:
	rm -rf $(VENV) .agenthq .pytest_cache .mypy_cache .ruff_cache
