# Two commands do everything on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export OMP_WAIT_POLICY ?= PASSIVE
export MLFLOW_DISABLE_TELEMETRY := true
export UV_COMPILE_BYTECODE := 1

.PHONY: run test test-fast cluster bench clean web

$(BIN)/.installed: requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.8
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.txt -e .
	$(BIN)/python -m pip install -q torch==2.13.0
	touch $@

# The dashboard (web/, served by `pae serve` at /): npm ci from the lockfile, then a Vite build whenever a
# source, the manifest or the lockfile is newer than the bundle.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed web/package.json web/package-lock.json $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html  ## build the dashboard bundle when missing or stale

run: $(BIN)/.installed web/dist/index.html  ## the nightly pipeline on demo data (embedded DB unless DATABASE_URL is set)
	$(BIN)/pae demo

test: $(BIN)/.installed web/dist/index.html  ## layer rules, web unit tests, then every test, slow end-to-end ones included
	$(BIN)/lint-imports --no-cache
	cd web && npm test
	$(BIN)/pytest -q

test-fast: $(BIN)/.installed web/node_modules/.installed
	$(BIN)/lint-imports --no-cache
	cd web && npm test
	$(BIN)/pytest -q -m "not slow"

cluster: $(BIN)/.installed  ## Airflow with the CeleryExecutor on loopback (needs DATABASE_URL, Redis); Ctrl-C stops it
	$(BIN)/pae cluster

clean:
	rm -rf .pae
