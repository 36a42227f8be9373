# fwwatch: every entry point for people and CI.
SHELL := /bin/bash
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI pins its own boto3 (and pulls in ~400 MB): it lives in a venv of its own.
TOOLS := .venv-tools
TOOLS_BIN := $(TOOLS)/bin
TOOLS_STAMP := $(TOOLS)/.installed
TOOLS_REQUIREMENTS := 'aws-sam-cli>=1.170' 'cfn-lint>=1.58'
# checkov pins a boto3 of its own too (another than SAM CLI's): a third venv.
CHECKOV := .venv-checkov
CHECKOV_BIN := $(CHECKOV)/bin
CHECKOV_STAMP := $(CHECKOV)/.installed
CHECKOV_REQUIREMENTS := 'checkov>=3.3.30'
# The SAM commands below need a region but no credentials, and send no telemetry.
AWS_OFFLINE := AWS_DEFAULT_REGION=eu-central-1 SAM_CLI_TELEMETRY=0

.DEFAULT_GOAL := help
.PHONY: help venv tools venvs debs check test unit lint fmt run bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv with Python 3.13 and the dev tools (quick when nothing changed)

$(TOOLS_STAMP):
	@test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS_BIN)/python -m pip install -q --upgrade pip
	$(TOOLS_BIN)/python -m pip install -q $(TOOLS_REQUIREMENTS)
	@touch $(TOOLS_STAMP)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_BIN)/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV_BIN)/python -m pip install -q --upgrade pip
	$(CHECKOV_BIN)/python -m pip install -q $(CHECKOV_REQUIREMENTS)
	@touch $(CHECKOV_STAMP)

tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) ## Create .venv-tools (SAM CLI, cfn-lint) and .venv-checkov (quick when done)

# The three virtualenvs need nothing of each other: a fresh clone installs them at once.
venvs:
	@$(MAKE) --no-print-directory -j3 $(STAMP) $(TOOLS_STAMP) $(CHECKOV_STAMP)

# The integration tests start a real Mosquitto broker (Debian puts it in /usr/sbin) and
# open the fleet report in a real headless Chromium (Playwright drives the system's one).
debs: ## Install the Debian packages the tests need (mosquitto, chromium), when missing
	@export PATH="$$PATH:/usr/sbin:/usr/local/sbin"; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi; \
	command -v mosquitto >/dev/null || { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq mosquitto; } || exit 1; \
	command -v chromium >/dev/null || { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium; } || exit 1

check: tools venv ## Validate, lint and scan template.yaml, then sam build (no AWS account needed; cached)
	$(AWS_OFFLINE) $(TOOLS_BIN)/sam validate --lint
	$(AWS_OFFLINE) $(TOOLS_BIN)/sam validate
	$(TOOLS_BIN)/cfn-lint template.yaml
	@# The skip list and each skip's reason: .checkov.yaml. Any other finding fails.
	$(CHECKOV_BIN)/checkov --config-file .checkov.yaml
	$(AWS_OFFLINE) LAYER_PYTHON=$(CURDIR)/$(BIN)/python $(TOOLS_BIN)/sam build --cached

lint: venv ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# Every function's module is named app: each is checked on its own.
	@for app in functions/*/app.py; do $(BIN)/mypy --strict --no-error-summary $$app || exit 1; done

fmt: venv ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Four workers on any machine: the tests mostly wait on servers of their own on loopback.
# A module's scenario that is built once (xdist_group) stays on one worker.
TEST_WORKERS ?= 4

test: venvs debs lint check ## Lint, check the template, then the whole test suite
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=10

unit: venv tools ## Unit tests only (no network; the IAM expansion runs SAM's translator from .venv-tools)
	$(BIN)/pytest tests/unit

run: venv ## A cycle on your fleet (with Tuya credentials), else the demo
	$(BIN)/python -m fwwatch.cli.demo

bench: venv ## Run every benchmark and rewrite bench/RESULTS.md (about 20 minutes)
	$(BIN)/python bench/run_all.py

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .mypy_cache .pytest_cache .ruff_cache .aws-sam
