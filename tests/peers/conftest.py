"""The peers' own tests use the interop slixmpp factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.interop.slix import SlixClient, clients


@pytest.fixture
async def slix() -> AsyncIterator[Callable[..., Awaitable[SlixClient]]]:
    """slixmpp clients: ``await slix(peer, login, password, ...)``; all end disconnected."""
    async with clients() as make:
        yield make
