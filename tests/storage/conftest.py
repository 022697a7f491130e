"""Fixtures for the storage tests: one database per test, on SQLite and PostgreSQL.

``db_url`` is parametrized: a SQLite file under ``tmp_path`` and, when
``CAREWIRE_TEST_PG_URL`` is set, a freshly created PostgreSQL database
(dropped afterwards), so tests stay independent under pytest-xdist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.core.stores import Stores
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, build_stores, migrate
from tests.pgdb import fresh_pg_database
from tests.storage.factories import new_account
from tests.templates import prefill


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of the parametrized kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"
        return
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
async def opened(db_url: str) -> AsyncIterator[tuple[Database, Stores]]:
    """A migrated database and its stores; closed afterwards.

    The database starts as a copy of the suite's template (``tests/templates.py``) rather
    than being migrated from nothing for each test (about a second on PostgreSQL).
    """
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    stores = build_stores(db, ephemeral_keyring())
    try:
        yield db, stores
    finally:
        await db.close()


@pytest.fixture
def db(opened: tuple[Database, Stores]) -> Database:
    """The open :class:`Database` of :func:`opened`."""
    return opened[0]


@pytest.fixture
def stores(opened: tuple[Database, Stores]) -> Stores:
    """The stores of :func:`opened`."""
    return opened[1]


@pytest.fixture
async def alice(stores: Stores) -> str:
    """An existing account, ``alice``."""
    await stores.accounts.create(new_account("alice"))
    return "alice"
