"""Fixtures of the directory's tests: a directory on each database kind (see tests/storage)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.directory.world import World, open_world
from tests.storage.conftest import db_url

__all__ = ["db_url"]


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    """The directory on a fresh database (SQLite, and PostgreSQL when configured)."""
    w = await open_world(db_url)
    try:
        yield w
    finally:
        await w.directory.close()
        await w.db.close()
