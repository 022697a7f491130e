"""Suite-wide fixtures, the PostgreSQL switch and the ``slow``/``e2e`` markers.

PostgreSQL variants run only when ``CAREWIRE_TEST_PG_URL`` is set (``.ci/run``
sets it); without it they are skipped, and the run says so loudly. They run
where SQL is chosen: the stores, datasets, rules, directory, security,
identity and uploads tests. The web, adapter and feature layers reach the
database only through those services (an import-linter contract), so their
tests run on SQLite alone, except the modules in :data:`_PG_KEEP` that carry
PostgreSQL end to end through the API.

``make test-fast`` leaves out tests marked ``slow`` or ``e2e``. They are marked
here by path, so a new file under ``tests/interop/`` or ``tests/e2e/`` is
marked without anyone remembering to.

Under ``pytest-xdist`` (``make test`` runs ``--dist loadgroup``) the tests of
one module under ``tests/interop/`` or ``tests/e2e/`` stay on one worker:
their module-scoped fixtures start a server subprocess or a browser, which
should happen once, not once per worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dnsserver import DnsServer, running
from tests.serverproc import SHARED_INIT_ENV

PG_URL_ENV = "CAREWIRE_TEST_PG_URL"
#: The federation peers (Prosody, ejabberd) and the test CA, for any test that needs them.
pytest_plugins = ["tests.peers.fixtures"]

_TESTS = Path(__file__).parent
#: Every test under these directories gets the marker: interop tests start a real server
#: subprocess, e2e tests drive the console in Chromium.
_DIRECTORY_MARKERS = {"interop": "slow", "e2e": "e2e"}
#: Modules whose every test is slow: ``carewire serve`` subprocesses, the OpenAPI fuzz run.
_SLOW_MODULES = frozenset({"test_serve_errors.py", "web/test_api_fuzz.py"})
#: Single tests that took more than 3 s on their own (``--durations``, 2 cores).
_SLOW_TESTS = frozenset({"xmpp/test_xml.py::test_round_trip_as_document"})


#: Layers whose tests run on SQLite only (their PostgreSQL variants are not collected).
_SQLITE_ONLY_LAYERS = frozenset({"web", "adapters", "features"})
#: Modules of those layers that still run on PostgreSQL too: record queries (filters, sorting,
#: paging compiled for each dialect) and hostile text through the whole API.
_PG_KEEP = frozenset({"web/test_records_api.py", "web/test_api_hostile_text.py"})


def pg_base_url() -> str | None:
    """The PostgreSQL server URL for tests, or None when not configured."""
    return os.environ.get(PG_URL_ENV) or None


def pytest_report_header(config: pytest.Config) -> str:
    if pg_base_url():
        return (
            f"carewire: PostgreSQL tests ENABLED ({PG_URL_ENV} is set; the web, adapter and"
            " feature layers run on SQLite, see tests/conftest.py)"
        )
    return (
        f"carewire: !!! PostgreSQL tests SKIPPED: set {PG_URL_ENV}="
        "postgresql://postgres@127.0.0.1:5432/postgres to run them !!!"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not pg_base_url():
        terminalreporter.write_sep(
            "!", f"PostgreSQL variants were SKIPPED ({PG_URL_ENV} not set)", yellow=True
        )
    if not os.environ.get("CAREWIRE_TEST_REDIS_URL"):
        terminalreporter.write_sep(
            "!", "cluster (Redis) tests were SKIPPED (CAREWIRE_TEST_REDIS_URL not set)", yellow=True
        )
    for peer, reason in federation_peers_missing().items():
        terminalreporter.write_sep(
            "!", f"federation tests with {peer} SKIPPED: {reason}", yellow=True
        )
    ran = _modules_run(terminalreporter)
    if any(module.startswith("tests/deploy/") for module in ran):
        from tests.deploy.tools import not_run

        for line in not_run(ran):
            terminalreporter.write_sep("!", line, yellow=True)


def _modules_run(terminalreporter: pytest.TerminalReporter) -> set[str]:
    """The test modules (paths from the repository root) of which some test reported."""
    return {
        str(getattr(report, "nodeid", "")).split("::")[0]
        for reports in terminalreporter.stats.values()
        for report in reports
    }


def federation_peers_missing() -> dict[str, str]:
    """The federation peers (tests/peers/) that cannot run here, and why."""
    from tests.peers import ejabberd, prosody

    reasons = {"Prosody": prosody.missing_reason(), "ejabberd": ejabberd.missing_reason()}
    return {peer: reason for peer, reason in reasons.items() if reason}


#: Modules that share a session server with another module run on its worker, so it starts once.
_SHARED_GROUPS = {
    "interop/test_profanity.py": "interop/test_alert_loop.py",  # the demo server
    "interop/test_s2s_features.py": "interop/test_s2s_carewire.py",  # the federated servers
    # Prosody and ejabberd (tests/peers/): one worker starts them once and runs every module
    # that federates with them, one after another.
    "interop/test_s2s_ejabberd.py": "interop/test_s2s_prosody.py",
}


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark ``slow`` and ``e2e`` tests, and group server modules, by where they live.

    Done as each test is collected: xdist's ``--dist loadgroup`` reads the
    ``xdist_group`` marks in its own ``pytest_collection_modifyitems``, which
    may run before a conftest's (then a module's tests spread over workers,
    each starting the module's server).
    """
    try:
        path = item.path.relative_to(_TESTS)
    except ValueError:
        return
    module = path.as_posix()
    marker = _DIRECTORY_MARKERS.get(path.parts[0])
    if marker is not None:
        item.add_marker(marker)
        item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(module, module)))
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    if module in _SLOW_MODULES or f"{module}::{name}" in _SLOW_TESTS:
        item.add_marker("slow")


def _sqlite_only(item: pytest.Item) -> bool:
    """Whether ``item`` is a PostgreSQL variant of a test of a SQLite-only layer."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or callspec.params.get("db_url") != "postgres":
        return False
    try:
        path = item.path.relative_to(_TESTS)
    except ValueError:
        return False
    return path.parts[0] in _SQLITE_ONLY_LAYERS and path.as_posix() not in _PG_KEEP


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the PostgreSQL variants of the layers that never choose SQL themselves."""
    dropped = [item for item in items if _sqlite_only(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        kept = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in kept]


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process: one directory for the whole run's initialised data
    directories (tests/serverproc.py), inherited by the pytest-xdist workers."""
    if hasattr(config, "workerinput") or os.environ.get(SHARED_INIT_ENV):
        return
    shared = tempfile.mkdtemp(prefix="carewire-init-cache-")
    os.environ[SHARED_INIT_ENV] = shared
    config.add_cleanup(lambda: _drop_shared(shared))


def _drop_shared(shared: str) -> None:
    shutil.rmtree(shared, ignore_errors=True)
    if os.environ.get(SHARED_INIT_ENV) == shared:
        del os.environ[SHARED_INIT_ENV]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the template databases this process made (tests/templates.py)."""
    from tests.templates import drop_templates

    drop_templates()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A fresh local DNS server (tests/dnsserver.py) on a loopback port, empty; fill it."""
    with running() as server:
        yield server


@pytest.fixture(scope="session")
def session_dns_server() -> Iterator[DnsServer]:
    """One DNS server for the session's long-lived peers (Prosody, ejabberd); add, never clear."""
    with running() as server:
        yield server
