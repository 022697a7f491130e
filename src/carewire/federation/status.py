"""The status board: what the server-to-server streams last reported per remote domain.

:class:`StatusBoard` is the :class:`~carewire.core.federation.FederationStatusSink`
the streams call. Theory of operation: :meth:`StatusBoard.update` only puts the
report in a dictionary keyed by (domain, direction, node), so a stream never
waits and a burst of reports about one stream costs one row write; a
background writer (started by :meth:`StatusBoard.start`) writes what is
pending in one transaction every ``flush_interval`` seconds. A write that
fails keeps its reports pending (newer ones win) for the next round.
:meth:`StatusBoard.read` writes what is pending first, so this node's
administrators see its latest reports; a cluster's other nodes write theirs
within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from carewire.clock import Clock
from carewire.core.federation import DomainStatus
from carewire.federation.model import ReportedStatus, StatusStore

log = logging.getLogger(__name__)

#: Seconds between two writes of pending reports.
FLUSH_INTERVAL = 1.0

_Key = tuple[str, str, str]


class StatusBoard:
    """Per (remote domain, direction, node): the last report, written behind."""

    def __init__(
        self,
        store: StatusStore,
        clock: Clock,
        *,
        node: str = "",
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        """Write to ``store``; reports naming no node are this ``node``'s."""
        self._store = store
        self._clock = clock
        self.node = node
        self._interval = flush_interval
        self._pending: dict[_Key, DomainStatus] = {}
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def update(self, status: DomainStatus) -> None:
        """Record ``status`` (never blocks; written within ``flush_interval``)."""
        if not status.node:
            status = replace(status, node=self.node)
        self._pending[(status.domain.lower(), status.direction, status.node)] = status

    @property
    def pending(self) -> int:
        """How many reports wait to be written."""
        return len(self._pending)

    async def flush(self) -> None:
        """Write every pending report now (in one transaction)."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                await self._store.write(list(batch.values()), self._clock.now())
            except BaseException:
                self._pending = batch | self._pending  # newer reports win
                raise

    async def read(self) -> list[ReportedStatus]:
        """Every node's reports by domain, direction and node (this node's written first)."""
        await self.flush()
        return await self._store.read()

    async def start(self) -> None:
        """Write behind in the background (owned here; :meth:`close` stops it)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="federation-status-writer")

    async def close(self) -> None:
        """Stop the writer, then write what is still pending."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        try:
            await self.flush()
        except Exception:  # closing: the reports are only a view of live streams
            log.exception("writing the last federation status reports failed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # a supervisor: kept pending, tried again next round
                log.exception("writing federation status reports failed")
