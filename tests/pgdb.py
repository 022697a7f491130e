"""A new, empty PostgreSQL database for one test (dropped afterwards)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import pg_base_url


def server_dsn(base: str) -> str:
    """``base`` as a plain ``postgresql://`` DSN asyncpg understands."""
    return make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """The URL of a new, empty database on ``CAREWIRE_TEST_PG_URL``'s server (skips without)."""
    base = pg_base_url()
    if base is None:
        pytest.skip("CAREWIRE_TEST_PG_URL not set")
    server = server_dsn(base)
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
