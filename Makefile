# SkyCart. `make run` serves the demo on embedded SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
TOOLS  ?= .venv-tools

.PHONY: run test test-sqlite test-mariadb services lint drills bench-drivers bench-metering bench-menu wrk clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/skycart demo
	@echo "SkyCart demo on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/docs)"
	$(BIN)/skycart serve --host 127.0.0.1 --port $(PORT)

services:
	./scripts/ensure-services.sh

# checkov's pins clash with the project's dependencies, so it lives in its own venv.
$(TOOLS)/.installed-checkov:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q 'checkov==3.3.30'
	touch $@

# gitlab-ci-local runs .gitlab-ci.yml in tests/deploy; 4.73.0 is the last release that runs on Node 20.
NODE_TOOLS ?= .tools/node
GITLAB_CI_LOCAL_VERSION ?= 4.73.0

.PHONY: gitlab-ci-local
gitlab-ci-local: $(NODE_TOOLS)/.installed-gitlab-ci-local-$(GITLAB_CI_LOCAL_VERSION)

$(NODE_TOOLS)/.installed-gitlab-ci-local-$(GITLAB_CI_LOCAL_VERSION):
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v rsync >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null; }
	npm install --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION)
	touch $@

# Each feature's own rules live in mk/*.mk; a file adds what `make test` needs first to TEST_PREREQS.
TEST_PREREQS :=
include $(sort $(wildcard mk/*.mk))

# Lint and types first (a few seconds): a wrong import or type fails before the suite runs.
test: $(VENV)/.installed-dev lint services $(TOOLS)/.installed-checkov gitlab-ci-local $(TEST_PREREQS)
	$(BIN)/pytest -q

test-sqlite: $(VENV)/.installed-dev
	$(BIN)/pytest -q --backend sqlite

test-mariadb: $(VENV)/.installed-dev services
	$(BIN)/pytest -q --backend mariadb

# ruff (rules and format) over everything, mypy over src/ (settings in pyproject.toml); the import
# directions of DESIGN.md §3 are tests/test_layout.py, part of the suite.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench drills
	$(BIN)/ruff format --check src tests bench drills
	$(BIN)/mypy

# Outage drills against real processes (not part of `make test`): one line of figures per drill.
drills: $(VENV)/.installed-dev services
	$(BIN)/python -m drills.run

bench-drivers: $(VENV)/.installed-dev services
	$(BIN)/python bench/mysql_drivers.py

wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench-metering: $(VENV)/.installed-dev services wrk
	$(BIN)/python bench/metering.py

bench-menu: $(VENV)/.installed-dev wrk
	$(BIN)/python bench/menu.py

clean:
	rm -rf $(VENV) skycart.db skycart.db-* .pytest_cache
