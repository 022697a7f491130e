"""Fixtures for the storage tests: one database per test, on SQLite and PostgreSQL.

``db_url`` is parametrized: a SQLite file under ``tmp_path`` and, when
``CAREWIRE_TEST_PG_URL`` is set, a freshly created PostgreSQL database
(dropped afterwards), so tests stay independent under pytest-xdist.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from carewire.core.stores import Stores
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, build_stores, migrate
from tests.conftest import pg_base_url
from tests.storage.factories import new_account
from tests.templates import prefill


def _server_dsn(base: str) -> str:
    """``base`` as a plain ``postgresql://`` DSN asyncpg understands."""
    url = make_url(base).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


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
    base = pg_base_url()
    if base is None:
        pytest.skip("CAREWIRE_TEST_PG_URL not set")
    server = _server_dsn(base)
    name = f"carewire_t_{secrets.token_hex(8)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


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
