"""A batching writer: queued writes committed in order, in batches, by one task.

Theory of operation: producers call :meth:`BatchWriter.put` (synchronous,
never blocks routing). The writer task wakes when something is queued, waits
up to ``max_delay`` seconds for more (or until ``max_items`` are queued) and
commits what is queued with ``commit`` in batches of at most ``max_items``,
oldest first. Every commit holds :attr:`BatchWriter.lock`, so batches never
overlap and order is kept. :meth:`BatchWriter.flush` takes the lock and commits
itself what is still queued of what was queued before the call, so it returns
only when all of that is committed (the stream-management durability barrier).

A batch that fails is retried item by item so one bad write cannot take the
others with it; an item that fails on its own is logged (its kind and the
error's type only: never payloads) and dropped.

The queue is bounded by backpressure, never by dropping: when more than
``max_pending`` items are queued, :meth:`BatchWriter.wait_for_room` (which
producers that may wait, such as a client's next message, await first) takes
the lock and commits batches itself until the backlog is at the limit again,
and a warning with the backlog size is logged at most once a minute.
:meth:`BatchWriter.put` itself never blocks nor refuses. :meth:`flush` waits
only for the items queued before it was called (counted), so it returns even
while producers keep adding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

WARN_INTERVAL = 60.0  # seconds between two backlog warnings


class BatchWriter(Generic[T]):
    """Commits queued items in order, in batches, from one owned task."""

    def __init__(
        self,
        commit: Callable[[Sequence[T]], Awaitable[None]],
        *,
        max_items: int = 200,
        max_delay: float = 0.05,
        max_pending: int = 50_000,
        name: str = "batch-writer",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._commit = commit
        self.max_items = max_items
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.name = name
        self._monotonic = monotonic
        self._warned_at: float | None = None
        self._queued = 0  # items ever queued
        self._handled = 0  # items taken off the queue and committed (or dropped)
        self.lock = asyncio.Lock()
        self._queue: deque[T] = deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.committed = 0  # items handled (committed, or dropped after a failure)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: T) -> None:
        """Queue one write (synchronous: callable from the delivery path)."""
        self._queue.append(item)
        self._queued += 1
        self._wake.set()
        if len(self._queue) >= self.max_items:
            self._full.set()
            if len(self._queue) > self.max_pending:
                self._warn_backlog()

    @property
    def is_over_limit(self) -> bool:
        """Whether more than ``max_pending`` items are queued."""
        return len(self._queue) > self.max_pending

    async def wait_for_room(self) -> None:
        """Return at once unless the backlog is over the limit; then help commit it down to it."""
        if len(self._queue) <= self.max_pending:
            return
        self._warn_backlog()
        async with self.lock:
            while len(self._queue) > self.max_pending:
                await self._commit_next()

    def _warn_backlog(self) -> None:
        now = self._monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            log.warning(
                "%s: %d writes queued (limit %d); senders wait until it is committed",
                self.name,
                len(self._queue),
                self.max_pending,
            )

    def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Commit what is queued and end the writer task."""
        self._stopping = True
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Return once everything queued before the call is committed."""
        target = self._queued
        async with self.lock:
            while self._handled < target and self._queue:
                await self._commit_next()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Commit what is queued, then hold off further batches while the body runs."""
        async with self.lock:
            await self._drain()
            yield

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if not self._stopping and len(self._queue) < self.max_items:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_delay)
            self._full.clear()
            try:
                await self.flush()
            except Exception:  # supervisor: the writer must outlive any bug
                log.exception("%s: flush failed", self.name)

    async def _drain(self) -> None:
        while self._queue:
            await self._commit_next()

    async def _commit_next(self) -> None:
        n = min(len(self._queue), self.max_items)
        items = [self._queue.popleft() for _ in range(n)]
        self._handled += n
        await self._commit_batch(items)

    async def _commit_batch(self, items: list[T]) -> None:
        try:
            await self._commit(items)
        except Exception as exc:  # supervisor: retry one by one so good writes survive
            if len(items) == 1:
                self._drop(items[0], exc)
            else:
                log.warning(
                    "%s: batch of %d failed (%s); retrying one by one",
                    self.name,
                    len(items),
                    type(exc).__name__,
                )
                for item in items:
                    try:
                        await self._commit([item])
                    except Exception as one_exc:  # supervisor: as above
                        self._drop(item, one_exc)
        self.committed += len(items)

    def _drop(self, item: T, exc: Exception) -> None:
        self.dropped += 1
        code = getattr(exc, "code", "")
        log.error(
            "%s: dropped a %s write: %s %s",
            self.name,
            type(item).__name__,
            type(exc).__name__,
            code,
        )
