# Carewire — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
DOMAIN ?= carewire.localhost
# One worker more than the cores: a good part of the suite waits on sockets and servers
# (on 2 cores, 3 workers take the suite from about 19 to 15 minutes).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

.PHONY: run demo test test-fast check coverage bench clean venv dev-venv wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The LDAP client (bonsai) builds against the OpenLDAP and Cyrus SASL headers. Where they are
# missing, install them from Debian's packages when we may (root with apt-get), else say how.
.PHONY: build-deps
build-deps:
	@if [ ! -f /usr/include/ldap.h ] || [ ! -f /usr/include/sasl/sasl.h ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "== installing libldap-dev and libsasl2-dev (the LDAP client builds against them)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libldap-dev libsasl2-dev >/dev/null \
			|| { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libldap-dev libsasl2-dev >/dev/null; }; \
		else \
			echo "!! the LDAP client needs the OpenLDAP and SASL headers: sudo apt-get install libldap-dev libsasl2-dev" >&2; \
			exit 1; \
		fi; \
	fi

# The runtime environment; re-installs when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python build-deps
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python build-deps
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

## make wheel: build dist/carewire-VERSION-py3-none-any.whl (docs/install.md installs it).
wheel: $(BIN)/python
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
