"""In-process counters of the running server, read by ``/metrics`` at scrape time.

Theory of operation: the hot paths (a stanza routed, a login answered, a
database statement timed) only bump plain integers here — a dictionary item
or a list slot, no lock, no allocation once the key exists. The Prometheus
exporter (:mod:`carewire.monitoring`) reads these objects when it is scraped
and turns them into metric families, so monitoring costs the core one
increment per event and the rest only when someone looks. Each server owns
its own objects (tests start many servers in one process).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the database latency buckets.
DB_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
#: Upper bounds (seconds) of the alert latency buckets (record write → receipt).
ALERT_BUCKETS: tuple[float, ...] = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class LatencyBuckets:
    """A cumulative-on-read histogram: one list slot incremented per observation.

    ``counts[i]`` holds the observations ``<= bounds[i]`` and ``> bounds[i-1]``
    (the last slot: above every bound); :meth:`cumulative` gives Prometheus's
    ``le`` view.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        """How many observations were made."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` pairs, ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile estimated as Prometheus's ``histogram_quantile`` does.

        Linear interpolation inside the bucket the rank falls in; None without
        observations; the highest finite bound when the rank is above them all.
        """
        total = self.count
        if total == 0:
            return None
        rank = q * total
        lower, below = 0.0, 0
        for bound, running in self.cumulative():
            if running >= rank and running > below:
                if bound == float("inf"):
                    return self.bounds[-1]
                return lower + (bound - lower) * (rank - below) / (running - below)
            lower, below = bound, running
        return self.bounds[-1]


@dataclass(slots=True)
class StanzaCounts:
    """Stanzas in and out by kind (``message``, ``presence``, ``iq``) and side (c2s, s2s)."""

    received: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    received_s2s: Counter[str] = field(default_factory=Counter)
    sent_s2s: Counter[str] = field(default_factory=Counter)
