# Carewire — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
DOMAIN ?= carewire.localhost
# One worker more than the cores: a good part of the suite waits on sockets and servers
# (on 2 cores, 3 workers take the suite from about 19 to 15 minutes).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

.PHONY: run demo test test-fast check coverage bench clean venv dev-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The runtime environment; re-installs when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

## make run: initialise ./data on first run, then serve the chat domain.
run: $(VENV)/.installed
	@if [ ! -f $(DATA)/carewire.toml ]; then \
		$(BIN)/carewire init --data-dir $(DATA) --domain $(DOMAIN); \
	fi
	$(BIN)/carewire serve --data-dir $(DATA)

## make demo: initialise ./data if needed and load the demo hospital (then `make run`).
demo: $(VENV)/.installed
	@if [ ! -f $(DATA)/carewire.toml ]; then \
		$(BIN)/carewire init --data-dir $(DATA) --domain $(DOMAIN); \
	fi
	$(BIN)/carewire demo --data-dir $(DATA)

# The suite starts hundreds of `carewire` subprocesses: let them keep their bytecode caches
# (gitignored) even where the environment sets PYTHONDONTWRITEBYTECODE.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

## make test: the whole suite, in parallel.
test: $(VENV)/.installed-dev
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## make test-fast: the inner loop: everything but slow (server subprocesses, fuzzing) and e2e tests.
test-fast: $(VENV)/.installed-dev
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow and not e2e" $(PYTEST_ARGS)

## make coverage: the suite under coverage, including the server subprocesses it starts.
coverage: $(VENV)/.installed-dev
	@pth="$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/carewire-coverage.pth"; \
	echo "import coverage; coverage.process_startup()" > "$$pth"; \
	rm -f .coverage .coverage.*; \
	COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); \
	status=$$?; rm -f "$$pth"; \
	$(BIN)/python -m coverage combine -q && $(BIN)/python -m coverage report; \
	exit $$status

## make check: format, lint, types, architecture contracts.
check: $(VENV)/.installed-dev
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

## make bench: the load scenarios of bench/ (see bench/README.md), e.g. BENCH_ARGS=all.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
