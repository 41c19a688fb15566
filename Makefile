# Everything installs from this repo's own files: a pinned uv (from PyPI) syncs .venv from uv.lock.
# Needs only Python 3.11+ (and Node 20+ for `make deploy`).
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The FinOps Foundation's focus-validator cannot share .venv (its pandera needs typeguard >= 3, the CDK's jsii
# pins 2.13.3): the lock's `focus` group gets an environment of its own (docs/focus.md).
FOCUS_VENV := .venv-focus
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup demo test unit integration infra local property lint synth deploy bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

$(FOCUS_VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(FOCUS_VENV) $(UV) sync --frozen --only-group focus --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced $(FOCUS_VENV)/.synced

demo: setup  ## run every demo export through the real state machine against the built-in simulators
	$(BIN)/report-exporter demo

test: setup  ## the whole suite (what CI runs)
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q tests/integration

infra: setup
	$(BIN)/python -m pytest -q tests/infra

local: setup
	$(BIN)/python -m pytest -q tests/local

property: setup  ## the job ledger's protocol under concurrent runs and injected faults (hypothesis, stateful)
	$(BIN)/python -m pytest -q tests/property

lint: setup  ## ruff everywhere, mypy --strict on the shipped code and the infra
	$(BIN)/ruff check functions infra tests bench
	$(BIN)/mypy functions/report_exporter infra/exporter_infra

synth: setup  ## synthesize both stacks into infra/cdk.out (bundles the Lambdas with pip, no Docker)
	cd infra && ../$(BIN)/python app.py

infra/node_modules: infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	@touch $@

deploy: setup infra/node_modules  ## cdk deploy both stacks into the account of your AWS credentials
	cd infra && PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk deploy --all --require-approval broadening

mutate: setup  ## mutation score per core module (mutmut; slow, not part of `make test`)
	$(BIN)/python tests/mutation/mutate.py $(if $(FRESH),--fresh) $(MODULES)

bench: setup  ## every performance goal with its figure and verdict (bench/README.md)
	$(BIN)/python bench/bench_polling.py
	$(BIN)/python bench/bench_cold_start.py
	$(BIN)/python bench/bench_download.py
	$(BIN)/python bench/bench_particle.py && $(BIN)/python bench/bench_here.py
	$(BIN)/python bench/bench_local_run.py

clean:
	rm -rf $(VENV) $(FOCUS_VENV) $(TOOLS) infra/cdk.out infra/node_modules out
