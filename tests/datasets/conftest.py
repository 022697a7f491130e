"""Fixtures for the dataset tests: a migrated database with the registry and service on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from carewire.clock import FakeClock
from carewire.datasets.model import RecordChanged
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.datasets import SqlDatasetStore
from tests.storage.conftest import db_url  # noqa: F401
from tests.templates import prefill


@dataclass(frozen=True, slots=True, kw_only=True)
class Platform:
    """The dataset layer on one database, and the events its service announced."""

    db: Database
    store: SqlDatasetStore
    registry: Registry
    service: DatasetService
    clock: FakeClock
    events: list[RecordChanged]


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Platform]:  # noqa: F811
    """A migrated database with every built-in dataset loaded (PHI sealed); closed afterwards.

    The database starts as a copy of the suite's template (``tests/templates.py``): the
    migrations and the built-in datasets' tables are already there, so each test skips
    building them (about a second on PostgreSQL).
    """
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    try:
        store = SqlDatasetStore(db, ephemeral_keyring())
        registry = Registry(store)
        await registry.load()
        clock = FakeClock()
        service = DatasetService(registry, store, clock)
        events: list[RecordChanged] = []
        service.subscribe(events.append)
        yield Platform(
            db=db, store=store, registry=registry, service=service, clock=clock, events=events
        )
    finally:
        await db.close()
