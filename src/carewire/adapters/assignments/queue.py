"""The assignment manager's rate-limited update queue, pure (seed 003, "Rate Limiting").

Updates are queued (at most ``depth`` of them) and taken once a second, at
most ``per_minute // 60`` at a time (4,000 a minute is 66 a second). The
queue holds one change per (assignment, kind): offering the same change
again replaces the queued one in its place, so nothing is ever queued twice.

When the queue is full a new change is refused and counted; the runtime
audits the refusal and marks the data for re-examination. Nothing is lost:
every change the manager makes is derived from the records, so the next
catch-up finds the refused ones again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from carewire.adapters.assignments.lifecycle import Change, Kind

DEFAULT_PER_MINUTE = 4000
DEFAULT_DEPTH = 10_000
MINUTE = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """How the queue is doing.

    Attributes:
        queued: Changes waiting now.
        depth: The most it holds.
        per_second: The most taken per second.
        highest: The most it ever held at once.
        refused: Changes refused because it was full.
        replaced: Changes offered again while queued (kept once).
        taken: Changes handed out to be applied.
    """

    queued: int
    depth: int
    per_second: int
    highest: int
    refused: int
    replaced: int
    taken: int


class UpdateQueue:
    """A bounded FIFO of changes, one per (assignment, kind), drained at a per-second rate."""

    def __init__(self, *, per_minute: int = DEFAULT_PER_MINUTE, depth: int = DEFAULT_DEPTH) -> None:
        if per_minute < 60:
            raise ValueError("the rate limit must be at least 60 updates a minute")
        if depth < 1:
            raise ValueError("the queue depth must be at least 1")
        self.per_minute = per_minute
        self.per_second = per_minute // 60
        self.depth = depth
        self._history: deque[tuple[float, int]] = deque()  # (when, how many) of the last minute
        self._items: dict[tuple[int, Kind], Change] = {}
        self._highest = 0
        self._refused = 0
        self._replaced = 0
        self._taken = 0

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, change: Change) -> bool:
        """Queue ``change`` (or replace the same change already queued).

        Returns:
            False when the queue is full and the change was refused.
        """
        key = change.key
        if key in self._items:
            self._items[key] = change
            self._replaced += 1
            return True
        if len(self._items) >= self.depth:
            self._refused += 1
            return False
        self._items[key] = change
        self._highest = max(self._highest, len(self._items))
        return True

    def take(self, now: float | None = None) -> list[Change]:
        """The next changes to apply this second, oldest first.

        At most :attr:`per_second`, and, when ``now`` (seconds, any monotonic
        clock) is given, never more than :attr:`per_minute` within any 60
        seconds: a check that comes a little early, or a late one followed by
        a punctual one, cannot squeeze a 61st share into a minute.
        """
        allowed = self.per_second
        if now is not None:
            while self._history and self._history[0][0] <= now - MINUTE:
                self._history.popleft()
            allowed = min(allowed, self.per_minute - sum(n for _, n in self._history))
        batch: list[Change] = []
        for key in list(self._items)[: max(allowed, 0)]:
            batch.append(self._items.pop(key))
        if batch and now is not None:
            self._history.append((now, len(batch)))
        self._taken += len(batch)
        return batch

    def stats(self) -> QueueStats:
        """Counters for health, the API and the benchmark."""
        return QueueStats(
            queued=len(self._items),
            depth=self.depth,
            per_second=self.per_second,
            highest=self._highest,
            refused=self._refused,
            replaced=self._replaced,
            taken=self._taken,
        )
