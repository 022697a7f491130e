"""Suite-wide fixtures and the PostgreSQL switch.

PostgreSQL variants run only when ``CAREWIRE_TEST_PG_URL`` is set (``.ci/run``
sets it); without it they are skipped, and the run says so loudly.
"""

from __future__ import annotations

import os

import pytest

PG_URL_ENV = "CAREWIRE_TEST_PG_URL"


def pg_base_url() -> str | None:
    """The PostgreSQL server URL for tests, or None when not configured."""
    return os.environ.get(PG_URL_ENV) or None


def pytest_report_header(config: pytest.Config) -> str:
    if pg_base_url():
        return f"carewire: PostgreSQL tests ENABLED ({PG_URL_ENV} is set)"
    return (
        f"carewire: !!! PostgreSQL tests SKIPPED: set {PG_URL_ENV}="
        "postgresql://postgres@127.0.0.1:5432/postgres to run them !!!"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not pg_base_url():
        terminalreporter.write_sep(
            "!", f"PostgreSQL variants were SKIPPED ({PG_URL_ENV} not set)", yellow=True
        )
