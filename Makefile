# The two commands the README gives: `make demo` and `make test`. Both set everything up first: a
# virtualenv in .venv with the pinned versions from constraints.txt; the tests also get Azurite from npm
# and Debian's Chromium (the demo needs Python only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup setup-test demo test test-fast lint bench chromium

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,style-transfer]"
	touch $(STAMP)

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP)

setup-test: $(STAMP) $(NODE_STAMP) chromium

# Debian's Chromium for the test that opens the sweep report page in a headless browser.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

demo: setup
	$(BIN)/python dags/demo/run_demo.py

test: setup-test
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup-test
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: setup
	$(BIN)/ruff check airflow_provider_amlpipe dags tests bench
	$(BIN)/ruff format --check airflow_provider_amlpipe
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

DVC_VENV := bench/.venv-dvc

# DVC, the small-files benchmark's second baseline, lives in its own virtualenv (its dependencies would
# clash with Airflow's).
$(DVC_VENV)/bin/dvc:
	$(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install --quiet dvc

bench: setup-test $(DVC_VENV)/bin/dvc
	$(BIN)/python bench/bench_hashing.py
	$(BIN)/python bench/bench_small_files.py
	$(BIN)/python bench/bench_reuse_decision.py
	$(BIN)/python bench/bench_dag_overhead.py
	$(BIN)/python bench/bench_usql.py
	$(BIN)/python bench/bench_remote.py
	$(BIN)/python bench/bench_deployment.py
	$(BIN)/python bench/bench_single_flight.py
	$(BIN)/python bench/bench_databricks.py
	$(BIN)/python bench/bench_parallel.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_transfer.py
