# Everything runs from the project's own virtualenv, created on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

# Debian packages the tests use: a headless browser for the Web UI test, docker-compose to
# validate docker-compose.yml (no Docker engine needed). Installed once, as root or with sudo.
DEBIAN_PACKAGES := chromium chromium-driver docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-packages test lint format demo dev bench record-histories clean

install: $(STAMP)

system-packages:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! command -v docker-compose >/dev/null; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## make test: formatting, lint, types, then every test (the time-skipping server, moto, the dev server)
test: lint system-packages
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## make demo: start everything locally, deploy version 2 over version 1, print the outcome, stop
## (REGIONS=2: the same environment in the first 2 of 5 local regions, deployed in parallel)
REGIONS ?= 1
demo: $(STAMP)
	$(PY) -m local.demo --regions $(REGIONS)

## make dev: the same set-up, left running with the Web UI for a person to explore
dev: $(STAMP)
	$(PY) -m local.dev

## make bench: every benchmark under bench/ on the local environment (BENCH_ARGS="--rounds 3 --json")
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## make record-histories: record histories for new scenarios (NAMES="a b" re-records those, on purpose)
record-histories: $(STAMP)
	$(PY) -m tests.workflows.record_histories $(NAMES)

clean:
	rm -rf $(VENV) .local .mypy_cache .pytest_cache .ruff_cache
