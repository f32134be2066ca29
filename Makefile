# Everything runs from the project's own virtualenv, created on first use with PYTHON
# (3.11 or newer; `make test PYTHON=python3.13`), holding the exact versions of
# requirements-dev.lock. A virtualenv of another Python is made anew.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP  := $(VENV)/.installed-$(PYTHON_VERSION)-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)

# Debian packages the tests and the local environment use: a headless browser for the Web UI
# test, docker-compose to validate docker-compose.yml (no Docker engine needed), HAProxy as the
# local load balancer's data plane, Prometheus scraping it. Installed once, as root or with sudo.
DEBIAN_PACKAGES := chromium chromium-driver docker-compose haproxy prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-packages test lint format demo dev bench lock record-histories clean

install: $(STAMP)

system-packages:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! command -v docker-compose >/dev/null || ! command -v haproxy >/dev/null \
		|| ! command -v prometheus >/dev/null; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

$(STAMP): pyproject.toml requirements-dev.lock
	@command -v $(PYTHON) >/dev/null || { echo "make: PYTHON=$(PYTHON) is not a command;" \
		"this project needs Python 3.11 or newer: name one, e.g. make test PYTHON=python3.12" >&2; \
		exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: this project needs Python 3.11 or newer; PYTHON=$(PYTHON) is" \
			"$$($(PYTHON) --version 2>&1 | head -n 1): name another one," \
			"e.g. make test PYTHON=python3.12" >&2; exit 2; }
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
		!= "$(PYTHON_VERSION)" ]; then echo "$(VENV) is another Python: making it anew"; \
		rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.lock
	rm -f $(VENV)/.installed-* && touch $@

## make lock: resolve pyproject.toml's ranges again into the two lock files (newest versions
## allowed, for Python 3.11 and newer); then run make test before committing them
lock: $(STAMP)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
		--custom-compile-command "make lock" --upgrade -q -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--custom-compile-command "make lock" --upgrade -q -o requirements-dev.lock

## make test: formatting, lint, types, then every test (the time-skipping server, moto, the dev
## server), a test module per parallel worker (TEST_WORKERS, default one more than the CPUs:
## most tests spend their time waiting on servers and timers, so a third worker on two CPUs
## finished the suite in 205 s where two took 249 s)
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: lint system-packages
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

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
# SCENARIO=bad-canary: a version failing 20% of requests as a 10% canary, rolled back
SCENARIO ?= good
demo: $(STAMP) system-packages
	$(PY) -m local.demo --regions $(REGIONS) --scenario $(SCENARIO)

## make dev: the same set-up, left running with the Web UI for a person to explore
dev: $(STAMP) system-packages
	$(PY) -m local.dev

## make bench: every benchmark under bench/ on the local environment (BENCH_ARGS="--rounds 3 --json")
bench: $(STAMP) system-packages
	$(PY) -m bench $(BENCH_ARGS)

## make record-histories: record histories for new scenarios (NAMES="a b" re-records those, on purpose)
record-histories: $(STAMP)
	$(PY) -m tests.workflows.record_histories $(NAMES)

clean:
	rm -rf $(VENV) .local .mypy_cache .pytest_cache .ruff_cache
