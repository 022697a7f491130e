"""Sans-IO guards of the alarm listener: a token-bucket rate limit and recent control ids."""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """At most ``rate`` messages a second, with bursts of up to ``burst``.

    Sans-IO: the caller passes the monotonic time.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = rate if burst is None else burst
        self._tokens = self.burst
        self._last: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means over the limit."""
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RecentIds:
    """The last ``size`` message control ids seen (MSH-3 with MSH-10), oldest forgotten first."""

    __slots__ = ("_ids", "size")

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids

    def add(self, key: tuple[str, str]) -> None:
        """Remember ``key`` (the most recent)."""
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)
