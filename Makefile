# Two commands do everything on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export OMP_WAIT_POLICY ?= PASSIVE
export MLFLOW_DISABLE_TELEMETRY := true
export UV_COMPILE_BYTECODE := 1

.PHONY: run test test-fast bench clean

$(BIN)/.installed: requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.8
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.txt -e .
	touch $@

run: $(BIN)/.installed  ## the nightly pipeline on demo data (embedded DB unless DATABASE_URL is set)
	$(BIN)/pae demo

test: $(BIN)/.installed  ## layer rules, then every test, slow end-to-end ones included
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

test-fast: $(BIN)/.installed
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf .pae
