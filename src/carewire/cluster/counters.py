"""Failure counters every node of a cluster shares, in Redis (throttle and login lockout).

Implements the seams of :mod:`carewire.security.shared_counters` for the
authentication throttle and the XMPP login's in-memory lockout counters, so
a client gains nothing by spreading its attempts over the nodes:

- ``<prefix>throttle:fail:<address>``: a sorted set of the address's failures
  (score: the time in ms) inside the window; ``<prefix>throttle:until:<address>``:
  when its throttle period ends (ms), expiring then. One Lua script trims the
  window, adds the failure, counts, and begins the period at ``max_failures``
  (the window is then emptied, as one node does), so concurrent failures on
  several nodes are counted exactly once each.
- ``<prefix>login:unknown:<login>``: a hash (``n``, ``last`` in ms) of an unknown
  login's failures; ``<prefix>login:sources:<login>``: the set (at most 64) of
  addresses a login's failures came from. Both expire a day after their last
  change.

Times come from the callers' clock (the nodes' clocks agree through NTP), so
tests may drive them with a fake clock. Every call has a short timeout; when
Redis cannot be reached the call raises :class:`SharedCountersDown` (the
caller counts locally), a warning is logged once, and Redis is not asked
again for ``retry_after`` seconds, so a dead Redis costs logins no time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from redis.asyncio import Redis

from carewire.cluster.lease import REDIS_FAILURES
from carewire.security.shared_counters import SharedCountersDown, SharedVerdict

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long an unknown login's failures and a login's failure addresses are kept.
LOGIN_COUNTERS_TTL = timedelta(days=1)
#: At most this many addresses are kept per login (as one node keeps).
MAX_SOURCES = 64

# KEYS: failures, until. ARGV: now ms, window ms, max failures, member.
# Returns {failures, until ms (0: not throttled), 1 when this failure began the period}.
_ADD_FAILURE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current > now then return {0, current, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  local ends = oldest + window
  redis.call('SET', KEYS[2], ends, 'PX', math.max(1, ends - now))
  redis.call('DEL', KEYS[1])
  return {n, ends, 1}
end
redis.call('PEXPIRE', KEYS[1], window)
return {n, 0, 0}
"""
# KEYS: unknown login's hash. ARGV: now ms, ttl ms.
_UNKNOWN_FAILED = """
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: a login's failure addresses. ARGV: address, ttl ms, most kept.
_SOURCE_FAILED = """
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[3]) then redis.call('SADD', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class RedisCounters:
    """The shared failure window and login counters of a cluster (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "carewire:",
        timeout: float = 0.5,
        retry_after: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Count on ``redis`` under ``prefix``; each call waits at most ``timeout`` seconds."""
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self._retry_after = retry_after
        self._monotonic = monotonic
        self._add_failure = redis.register_script(_ADD_FAILURE)
        self._unknown_failed = redis.register_script(_UNKNOWN_FAILED)
        self._source_failed = redis.register_script(_SOURCE_FAILED)
        self._node_tag = uuid.uuid4().hex[:8]
        self.is_down = False
        self._retry_at = 0.0

    # -- the throttle (SharedFailureWindow) ---------------------------------------------------

    async def add_failure(
        self, source: str, now: datetime, *, window: timedelta, max_failures: int
    ) -> SharedVerdict:
        """Count a failure of ``source``; the period begins when ``max_failures`` are inside."""
        now_ms = _ms(now)
        keys = [self._key("throttle:fail", source), self._key("throttle:until", source)]
        member = f"{now_ms}:{self._node_tag}:{uuid.uuid4().hex[:8]}"
        args: list[int | str] = [now_ms, int(window.total_seconds() * 1000), max_failures, member]
        failures, ends, started = await self._run(lambda: self._add_failure(keys, args))
        return SharedVerdict(
            failures=int(failures), until=_at(int(ends)) if ends else None, started=bool(started)
        )

    async def throttled_until(self, source: str, now: datetime) -> datetime | None:
        """When ``source``'s period ends, or None when it is not throttled at ``now``."""
        raw = await self._run(lambda: self._redis.get(self._key("throttle:until", source)))
        if raw is None:
            return None
        ends = int(raw)
        return _at(ends) if ends > _ms(now) else None

    # -- the login lockout's in-memory counters (SharedLoginFailures) ---------------------------

    async def unknown_failed(self, login: str, at: datetime) -> None:
        """Count a failed login of an unknown account."""
        key, ttl = self._key("login:unknown", login), self._ttl_ms()
        await self._run(lambda: self._unknown_failed([key], [_ms(at), ttl]))

    async def unknown_failures(self, login: str) -> tuple[int, datetime | None]:
        """An unknown login's failures and the time of the last one."""
        key = self._key("login:unknown", login)
        n, last = await self._run(lambda: self._redis.hmget(key, ["n", "last"]))
        return int(n or 0), _at(int(last)) if last else None

    async def source_failed(self, login: str, remote_ip: str) -> None:
        """Note the address a counted failure of ``login`` came from."""
        key, ttl = self._key("login:sources", login), self._ttl_ms()
        await self._run(lambda: self._source_failed([key], [remote_ip, ttl, MAX_SOURCES]))

    async def failure_sources(self, login: str) -> frozenset[str]:
        """The addresses ``login``'s counted failures came from."""
        members = await self._run(lambda: self._redis.smembers(self._key("login:sources", login)))
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def forget_sources(self, login: str) -> None:
        """``login`` signed in: forget its failures' addresses."""
        await self._run(lambda: self._redis.delete(self._key("login:sources", login)))

    # -- plumbing -------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    @staticmethod
    def _ttl_ms() -> int:
        return int(LOGIN_COUNTERS_TTL.total_seconds() * 1000)

    async def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call; SharedCountersDown (logged once) when Redis does not answer."""
        now = self._monotonic()
        if self.is_down and now < self._retry_at:
            raise SharedCountersDown("the shared counters were unreachable a moment ago")
        try:
            result: Any = await asyncio.wait_for(make(), timeout=self._timeout)
        except REDIS_FAILURES as exc:
            self._retry_at = now + self._retry_after
            if not self.is_down:
                self.is_down = True
                log.warning(
                    "cluster: the shared failure counters in Redis cannot be reached (%s); "
                    "this node counts throttling and lockouts by itself until they can",
                    exc or type(exc).__name__,
                )
            raise SharedCountersDown(str(exc)) from None
        if self.is_down:
            self.is_down = False
            log.warning("cluster: the shared failure counters in Redis answer again")
        return result  # type: ignore[no-any-return]
