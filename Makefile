# archgen: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
TRITON_VENV := .venv-triton
AIRFLOW_VENV := .venv-airflow
MA_VENV := .venv-model-analyzer
CHECKOV_VENV := .venv-checkov
BIN := $(VENV)/bin
PIP_FLAGS ?= --disable-pip-version-check -q
# pip on some machines warns once per package about absent local mirrors; keep the output readable
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }

# pipefail: a failing pip install fails the target even through the QUIET_PIP filter
.SHELLFLAGS := -o pipefail -c

.PHONY: help test-quick setup setup-node-tools setup-triton setup-airflow setup-model-analyzer setup-checkov system-deps test lint typecheck pytest demo reference rules-doc bench clean services

help:
	@echo "make demo       set up and generate + run the reference system end to end"
	@echo "make test       set up, then ruff, mypy and pytest"
	@echo "make test-quick the unit tier: in process, no subprocess, no server (under 30 s)"
	@echo "make reference  regenerate reference_impl/ and the presets' digests (tests/golden/presets.sha256)"
	@echo "make bench      run the benchmarks in bench/"

$(BIN)/.installed: pyproject.toml
	@echo "==> creating $(VENV) (archgen, Feast 0.67, pyspark, test tools)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install $(PIP_FLAGS) -e '.[feast,spark,dev]' $(QUIET_PIP)
	@touch $@

$(TRITON_VENV)/.installed: requirements/triton-runtime.txt
	@echo "==> creating $(TRITON_VENV) (tritonserver 2.51 from nvidia-pytriton, numpy < 2)"
	@test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	@$(TRITON_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/triton-runtime.txt $(QUIET_PIP)
	@touch $@

setup: $(BIN)/.installed
setup-triton: $(TRITON_VENV)/.installed

# Airflow 3 in its own venv: the generated DAGs are imported by a real DagBag in the tests
setup-airflow:
	@bash scripts/ensure_airflow_venv.sh $(AIRFLOW_VENV) $(QUIET_PIP)

# Triton Model Analyzer in its own venv: the tests load the generated profile configs with its own parser
$(MA_VENV)/.installed:
	@echo "==> creating $(MA_VENV) (triton-model-analyzer, to parse generated Model Analyzer configs)"
	@test -x $(MA_VENV)/bin/python || $(PYTHON) -m venv $(MA_VENV)
	@$(MA_VENV)/bin/pip install $(PIP_FLAGS) triton-model-analyzer==1.58.0 $(QUIET_PIP)
	@touch $@

setup-model-analyzer: $(MA_VENV)/.installed

# checkov in its own venv (its pins would downgrade packages Feast uses): scans every preset's generated repo
$(CHECKOV_VENV)/.installed:
	@echo "==> creating $(CHECKOV_VENV) (checkov, the scanner of the generated manifests, Dockerfiles and workflow)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/pip install $(PIP_FLAGS) checkov==3.3.30 $(QUIET_PIP)
	@touch $@

setup-checkov: $(CHECKOV_VENV)/.installed

# graphviz, chromium and docker-compose from Debian when missing (tests skip with a reason otherwise)
system-deps:
	@bash .ci/system-deps.sh

services:
	@bash .ci/services.sh

lint: setup
	$(BIN)/ruff check requirements_spec generator tools tests bench
	$(BIN)/ruff format --check requirements_spec generator tools tests bench

typecheck: setup
	$(BIN)/mypy

# Backstage's own catalog model, to validate the generated catalog-info.yaml the way the catalog does
NODE_TOOLS := .node-tools
$(NODE_TOOLS)/.installed:
	@command -v npm >/dev/null || { echo "npm is needed to validate catalog-info.yaml (apt-get install npm)"; exit 1; }
	npm install --no-audit --no-fund --prefix $(NODE_TOOLS) '@backstage/catalog-model@1.10.3'
	@touch $@
setup-node-tools: $(NODE_TOOLS)/.installed

pytest: setup setup-triton setup-airflow setup-model-analyzer setup-node-tools setup-checkov system-deps services
	ARCHGEN_NODE_TOOLS=$(abspath $(NODE_TOOLS)) ARCHGEN_TRITON_VENV=$(abspath $(TRITON_VENV)) ARCHGEN_AIRFLOW_VENV=$(abspath $(AIRFLOW_VENV)) \
		ARCHGEN_MODEL_ANALYZER_VENV=$(abspath $(MA_VENV)) ARCHGEN_CHECKOV_VENV=$(abspath $(CHECKOV_VENV)) \
		$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# the inner loop: the unit tier (tests/conftest.py says which tests are in it and enforces that they start nothing)
test-quick: setup
	HYPOTHESIS_PROFILE=quick $(BIN)/pytest -m unit -q $(PYTEST_ARGS)

# DEMO_ARGS: e.g. "out/dir --spec my.yaml --entities 3" (python -m tools.demo --help)
demo: setup setup-triton system-deps services
	@ARCHGEN_VENV=$(abspath $(VENV)) ARCHGEN_TRITON_VENV=$(abspath $(TRITON_VENV)) $(BIN)/python -m tools.demo $(DEMO_ARGS)

reference: setup
	$(BIN)/python -m tools.reference

rules-doc: setup
	$(BIN)/archgen rules-doc -o docs/rules.md

bench: setup setup-triton
	@for f in bench/bench_*.py; do echo "==> $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(TRITON_VENV) $(AIRFLOW_VENV) $(MA_VENV) $(CHECKOV_VENV) $(NODE_TOOLS) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
