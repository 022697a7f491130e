"""Fixtures for the adapter tests: a platform on each database of the storage suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from tests.storage.conftest import db_url  # noqa: F401
from tests.templates import prefill

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Assembly]:  # noqa: F811
    """An open platform with the XMPP and DataUpdate kinds and no instances."""
    p = await assemble(Options(url=await prefill(db_url), clock=FakeClock(START)))
    try:
        yield p
    finally:
        await p.close()
