# aitrust: `make demo` runs the product on a local control plane; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all venv testbin generate lint test test-unit test-e2e demo demo-down bench clean

all: test

$(STAMP): pyproject.toml requirements.lock
	@echo "==> creating $(VENV) and installing aitrust with pinned dev tools"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

venv: $(STAMP)

# network-config-analyzer pins PyYAML differently from us, so it gets a venv of its own.
NCA := .nca-venv/bin/nca
$(NCA): requirements-nca.lock
	@echo "==> installing network-config-analyzer into .nca-venv"
	@test -x .nca-venv/bin/python || $(PYTHON) -m venv .nca-venv
	@.nca-venv/bin/python -m pip install --quiet -r requirements-nca.lock
	@touch $@

testbin:
	@echo "==> pinned test binaries (cached in $$(bash hack/testbin.sh --print-dir))"
	@bash hack/testbin.sh

generate: venv
	$(PY) -m aitrust.api.crdgen crds
	$(PY) hack/sync-chart-crds.py

lint: venv
	@echo "==> ruff, mypy --strict, import contracts"
	$(VENV)/bin/ruff check operator tests e2e bench
	$(VENV)/bin/ruff format --check operator tests e2e bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests e2e
	$(VENV)/bin/mypy --explicit-package-bases bench
	$(VENV)/bin/lint-imports

test: venv testbin $(NCA) lint
	@echo "==> Rego: opa fmt, check --strict, test with coverage"
	@bash hack/opa-check.sh
	@echo "==> e2e dependencies (iptables, ipset, iproute2 from Debian)"
	@bash hack/e2e-deps.sh
	@echo "==> pytest: unit, integration (real kube-apiserver, etcd, OPA, helm, promtool) and e2e (real packets)"
	AITRUST_NCA=$(CURDIR)/$(NCA) $(VENV)/bin/pytest

test-e2e: venv testbin
	@bash hack/e2e-deps.sh
	$(VENV)/bin/pytest e2e

test-unit: venv
	$(VENV)/bin/pytest -m "not integration" tests/api tests/core tests/controller

demo: venv testbin
	$(PY) -m aitrust.demo up

demo-down: venv
	$(PY) -m aitrust.demo down

# The bench's load generator (vegeta) is pinned in hack/testbin.sh but built only here.
bench: venv testbin
	@TESTBIN_ONLY=vegeta bash hack/testbin.sh
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
