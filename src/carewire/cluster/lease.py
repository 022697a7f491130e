"""A lease in Redis with a fencing token: one node of the cluster leads a group of jobs.

Theory of operation. The lease is one Redis key, ``<prefix>lease:<name>``,
whose value names the holder and its token (``<node>/<token>``) and which
expires ``ttl`` after it was last set. A node acquires it only when the key
does not exist (``SET … NX PX``), and each acquisition takes the next value of
``<prefix>lease:<name>:token`` (``INCR``): the *fencing token*, larger for
every new leader. Both happen in one Lua script, so a token is never given
without the lease. The holder renews it every ``renew_every`` seconds with a
compare-and-set script (the expiry moves only if the value is still its
own), and deletes it the same way when it stops, so another node takes over
at once instead of after ``ttl``.

Two leaders must never act at once. Redis alone cannot promise that: a
holder may be paused (a long garbage collection, a frozen VM) or cut off
from Redis while its key expires and another node acquires it. Hence:

- the holder acts only while ``monotonic() < deadline``, where the deadline
  is the moment it *sent* its last successful acquire or renew plus ``ttl``
  minus ``margin``: Redis started the key's ``ttl`` later than that, so the
  holder stops acting before the key can have expired, even when renewals
  stop arriving (Redis down);
- before each run, the token is presented to PostgreSQL
  (:mod:`carewire.cluster.lease_gate`), which refuses a token older than one
  already presented: a stale leader that wakes up after a takeover is
  refused by the database and steps down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from carewire.errors import ConfigError

log = logging.getLogger(__name__)

# KEYS: lease, token counter. ARGV: node, ttl in ms. Returns the new token, or 0 when held.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. token, 'PX', ARGV[2])
return token
"""
# KEYS: lease. ARGV: our value, ttl in ms. 1 when renewed, 0 when the lease is not ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS: lease. ARGV: our value. 1 when deleted, 0 when the lease was not ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

#: What a Redis call may raise when Redis is down, slow or refuses: the lease treats each alike.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTiming:
    """How long a lease lasts, how often its holder renews it, and the holder's safety margin.

    Attributes:
        ttl: Seconds the lease lives in Redis after its last renewal (the takeover time
            after a crash).
        renew_every: Seconds between renewals (and between attempts to acquire it).
        margin: Seconds before the lease could expire at which the holder stops acting.
    """

    ttl: float
    renew_every: float
    margin: float

    @classmethod
    def of(cls, ttl: float, renew_every: float | None = None) -> LeaseTiming:
        """Timing for ``ttl`` (renewal every third of it unless given; margin a fifth).

        Raises:
            ConfigError: The holder could not renew before it must stop acting.
        """
        renew = ttl / 3 if renew_every is None else renew_every
        margin = ttl / 5
        if not (ttl > 0 and renew > 0 and renew + margin < ttl):
            raise ConfigError(
                f"cluster lease: renewal every {renew}s with a {margin:.2f}s margin does not fit "
                f"in a {ttl}s lease (cluster.heartbeat_seconds must be well under "
                "cluster.node_timeout_seconds)"
            )
        return cls(ttl=ttl, renew_every=renew, margin=margin)


#: Told when this node becomes leader (True) or stops being it (False).
LeadershipListener = Callable[[bool], Awaitable[None] | None]


class Lease:
    """One node's side of a named lease (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        name: str,
        node: str,
        timing: LeaseTiming,
        prefix: str = "carewire:",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """A lease ``name`` for ``node``, on ``redis`` (whoever made the client owns it)."""
        self.name = name
        self.node = node
        self.timing = timing
        self.key = f"{prefix}lease:{name}"
        self.token_key = f"{prefix}lease:{name}:token"
        self.token: int | None = None  # the fencing token of the current (or last) holding
        self._redis = redis
        self._monotonic = monotonic
        self._value: str | None = None
        self._deadline = 0.0
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._was_leading = False
        self._is_reachable = True  # whether the last Redis call answered (for logging once)
        self.listeners: list[LeadershipListener] = []

    @property
    def ttl_ms(self) -> int:
        """The lease's time to live in Redis, in milliseconds."""
        return max(1, round(self.timing.ttl * 1000))

    def is_held(self) -> bool:
        """Whether this node may act as leader now (held, and before its local deadline)."""
        return self._value is not None and self._monotonic() < self._deadline

    def remaining(self) -> float:
        """Seconds this node may still act without a renewal (0 when not held)."""
        return max(0.0, self._deadline - self._monotonic()) if self._value is not None else 0.0

    async def try_acquire(self) -> bool:
        """One attempt to take the lease; True when this node now holds it (new token)."""
        sent = self._monotonic()
        token = int(
            await self._call(self._acquire([self.key, self.token_key], [self.node, self.ttl_ms]))
        )
        if not token:
            return False
        self.token = token
        self._value = f"{self.node}/{token}"
        self._deadline = sent + self.timing.ttl - self.timing.margin
        return True

    async def renew(self) -> bool:
        """Extend the holding; False (and stepped down) when the lease is no longer ours."""
        if self._value is None:
            return False
        sent = self._monotonic()
        if int(await self._call(self._renew([self.key], [self._value, self.ttl_ms]))):
            self._deadline = sent + self.timing.ttl - self.timing.margin
            return True
        self.step_down()
        return False

    async def release(self) -> None:
        """Stop acting and delete the lease if it is still ours (another node takes it at once)."""
        value = self._value
        self.step_down()
        if value is not None:
            await self._call(self._release([self.key], [value]))

    def step_down(self) -> None:
        """Stop acting as leader now (no Redis call: the lease then expires or is taken)."""
        self._value = None
        self._deadline = 0.0

    async def holder(self) -> str | None:
        """The value of the lease in Redis (``node/token``), None when nobody holds it."""
        raw = await self._call(self._redis.get(self.key))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def step(self) -> bool:
        """One round: renew when holding, else try to acquire; whether this node leads now.

        Redis failures are logged (not raised): the holding simply runs out at its
        deadline, and the next round tries again.
        """
        try:
            if self._value is not None:
                await self.renew()
            else:
                await self.try_acquire()
        except REDIS_FAILURES as exc:
            if self._is_reachable:
                log.warning(
                    "cluster: lease %s: Redis does not answer (%s); no node can lead the "
                    "singleton jobs until it does",
                    self.name,
                    exc or type(exc).__name__,
                )
            self._is_reachable = False
        else:
            if not self._is_reachable:
                log.warning("cluster: lease %s: Redis answers again", self.name)
            self._is_reachable = True
        await self._note_leading(self.is_held())
        return self.is_held()

    async def keep(self) -> None:
        """Renew or acquire every ``renew_every`` seconds until cancelled, then release."""
        try:
            while True:
                await self.step()
                await asyncio.sleep(self._next_delay())
        finally:
            await self._release_quietly()

    def _next_delay(self) -> float:
        """The renewal interval, but never past the moment the holding runs out."""
        delay = self.timing.renew_every
        if self._value is not None:
            delay = min(delay, max(0.01, self.remaining()))
        return delay

    async def _release_quietly(self) -> None:
        try:
            await asyncio.shield(self.release())
        except (RedisError, OSError, TimeoutError, asyncio.CancelledError) as exc:
            log.debug("lease %s: not released (%s); it expires by itself", self.name, exc)
        await self._note_leading(False)

    async def _note_leading(self, leading: bool) -> None:
        """Log (once per change) and tell the listeners when leadership comes or goes."""
        if leading == self._was_leading:
            return
        self._was_leading = leading
        if leading:
            log.info(
                "cluster: %s now leads %s (fencing token %s)", self.node, self.name, self.token
            )
        else:
            log.warning("cluster: %s no longer leads %s", self.node, self.name)
        for listener in self.listeners:
            try:
                result = listener(leading)
                if result is not None:
                    await result
            except Exception:  # supervisor: the lease is kept whatever a listener does
                log.exception("lease %s: a leadership listener failed", self.name)

    async def _call(self, command: Awaitable[Any]) -> Any:
        """A Redis command under a timeout: no longer than a holding can last.

        Safety never rests on it (the deadline counts from when a command was
        sent); it only keeps a hung Redis from stalling the renewals for ever.
        """
        return await asyncio.wait_for(command, timeout=self.timing.ttl - self.timing.margin)
