"""Durability barrier: what must be on disk before the server acknowledges a stanza.

Writes on the message path (the archive, delivery tracking) are batched so
routing never waits on the database. A feature that batches registers a
``flush`` here; stream management (XEP-0198) awaits :meth:`Durability.flush`
before it answers a client's ``<r/>``, so a message the server has acknowledged
is never lost, whatever happens to the process afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Flush = Callable[[], Awaitable[None]]


class Durability:
    """The registered flushes of batching writers."""

    def __init__(self) -> None:
        self._flushes: list[Flush] = []

    def register(self, flush: Flush) -> None:
        """Add a writer whose pending writes :meth:`flush` must make durable."""
        self._flushes.append(flush)

    async def flush(self) -> None:
        """Return once everything queued before the call is committed."""
        if len(self._flushes) == 1:
            await self._flushes[0]()
        elif self._flushes:
            await asyncio.gather(*(f() for f in self._flushes))
