"""Fixtures for the adapter tests: a platform on each database of the storage suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from carewire.clock import FakeClock
from carewire.platform import Platform, open_platform
from tests.storage.conftest import db_url  # noqa: F401

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Platform]:  # noqa: F811
    """An open platform with the XMPP and DataUpdate kinds and no instances."""
    p = await open_platform(db_url, clock=FakeClock(START))
    try:
        yield p
    finally:
        await p.close()
