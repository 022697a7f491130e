"""Fixtures for the security tests: the parametrized database of the storage tests, console
accounts on it, and a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.mailserver import smtp_server
from tests.security.console_accounts import Opened, open_accounts
from tests.storage.conftest import db_url

__all__ = ["db_url", "smtp_server"]


@pytest.fixture
async def opened(db_url: str) -> AsyncIterator[Opened]:
    """Console accounts on a fresh database of each kind."""
    o = await open_accounts(db_url)
    try:
        yield o
    finally:
        await o.db.close()
