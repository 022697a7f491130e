"""Throttling of failed authentication per source address (XMPP, REST API, web console).

Theory of operation. Every failed authentication (a wrong password or PIN,
an unknown account, an invalid API token) is counted against the address
it came from, whatever the channel. A source with ``max_failures`` failures
inside ``window`` is *throttled* until its oldest counted failure leaves the
window: its further attempts are refused at once, without looking at the
credentials, so they neither reach an account's lockout counter (a flood
from one address cannot lock many accounts) nor cost a password hash.

The audit trail stays bounded under a flood: the failures that lead up to
the throttle are recorded one by one as usual (at most ``max_failures`` per
source and window); the refused attempts after it are only counted here,
and one ``auth.throttled`` entry per source and throttle period records how
many there were, on which channels, from when to when. :meth:`flush` writes
the entries of periods that have ended; the server calls it every minute
and at shutdown.

The state is in memory, per process, bounded by ``max_sources`` (the
oldest sources are forgotten first). On a cluster (``[cluster] redis_url``)
the failures and throttle periods live in Redis instead (:attr:`AuthThrottle.shared`,
:mod:`carewire.cluster.counters`), so an address cannot multiply its attempts
by spreading them over the nodes; each node still counts and audits the
refusals it answered itself. When Redis cannot be reached, the node counts
locally again until it can (never refusing everyone, never failing a login
for it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carewire.clock import Clock
from carewire.errors import CarewireError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.shared_counters import SharedCountersDown, SharedFailureWindow

log = logging.getLogger(__name__)


class ThrottledError(CarewireError):
    """The caller's address is refused for now after too many failed authentications."""

    code = "too-many-failures"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """How many failures one address may cause, and in what time."""

    max_failures: int = 20
    window: timedelta = timedelta(minutes=10)
    max_sources: int = 100_000


@dataclass(slots=True, kw_only=True)
class _Source:
    failures: deque[datetime] = field(default_factory=deque)
    refused: int = 0
    channels: set[str] = field(default_factory=set)
    first_refused: datetime | None = None
    last_refused: datetime | None = None
    until: datetime | None = None  # throttled until then


class AuthThrottle:
    """Counts failed authentications per address and refuses the addresses over the limit."""

    def __init__(
        self, clock: Clock, audit: AuditTrail | None = None, policy: ThrottlePolicy | None = None
    ) -> None:
        """Count on ``clock``; record throttle periods in ``audit`` (None: only log them)."""
        self._clock = clock
        self._audit = audit
        self.policy = policy or ThrottlePolicy()
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        #: On a cluster, the failures and periods every node sees (None: this process only).
        self.shared: SharedFailureWindow | None = None

    def is_throttled(self, remote_ip: str) -> bool:
        """Whether attempts from ``remote_ip`` are refused now (pure: counts nothing)."""
        source = self._sources.get(remote_ip)
        return source is not None and source.until is not None and self._clock.now() < source.until

    async def admit(self, remote_ip: str, channel: Channel) -> bool:
        """Whether an attempt from ``remote_ip`` may check credentials; a refusal is counted."""
        now = self._clock.now()
        source = await self._adopt_shared(remote_ip, now)
        if source is None or source.until is None:
            return True
        if now >= source.until:
            await self._close_period(remote_ip, source)
            return True
        source.refused += 1
        source.channels.add(channel.value)
        source.first_refused = source.first_refused or now
        source.last_refused = now
        return False

    async def _adopt_shared(self, remote_ip: str, now: datetime) -> _Source | None:
        """The source's local state, its throttle period taken from the shared window if any."""
        source = self._sources.get(remote_ip)
        if self.shared is None or not remote_ip:
            return source
        try:
            until = await self.shared.throttled_until(remote_ip, now)
        except SharedCountersDown:
            return source  # counted locally meanwhile
        if until is not None and now < until:
            source = source or self._source(remote_ip)
            source.until = until  # another node may have begun it
        elif source is not None and source.until is not None and now < source.until:
            source.until = now  # the shared window ended it (or forgot it): close it locally
        return source

    def _source(self, remote_ip: str) -> _Source:
        source = self._sources.get(remote_ip)
        if source is None:
            source = self._sources[remote_ip] = _Source()
            while len(self._sources) > self.policy.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(remote_ip)
        return source

    async def failed(self, remote_ip: str, channel: Channel) -> None:
        """Count a failed authentication from ``remote_ip``."""
        if not remote_ip:
            return
        now = self._clock.now()
        if self.shared is not None:
            try:
                verdict = await self.shared.add_failure(
                    remote_ip, now, window=self.policy.window, max_failures=self.policy.max_failures
                )
            except SharedCountersDown:
                pass  # counted locally below, until the shared counters answer again
            else:
                if verdict.until is not None:
                    source = self._source(remote_ip)
                    if source.until is None:
                        source.until = verdict.until
                    if verdict.started:
                        self._log_throttled(remote_ip, verdict.failures, channel)
                return
        source = self._source(remote_ip)
        horizon = now - self.policy.window
        while source.failures and source.failures[0] <= horizon:
            source.failures.popleft()
        source.failures.append(now)
        if len(source.failures) >= self.policy.max_failures and source.until is None:
            source.until = source.failures[0] + self.policy.window
            self._log_throttled(remote_ip, len(source.failures), channel)

    @staticmethod
    def _log_throttled(remote_ip: str, failures: int, channel: Channel) -> None:
        log.warning(
            "authentication from %s throttled after %d failures (%s)",
            remote_ip,
            failures,
            channel.value,
        )

    async def flush(self) -> int:
        """Record the throttle periods that have ended; returns how many."""
        now = self._clock.now()
        ended = [
            (ip, s) for ip, s in self._sources.items() if s.until is not None and now >= s.until
        ]
        for ip, source in ended:
            await self._close_period(ip, source)
        horizon = now - self.policy.window
        for ip in [
            ip for ip, s in self._sources.items() if not s.failures or s.failures[-1] <= horizon
        ]:
            if self._sources[ip].until is None:
                del self._sources[ip]
        return len(ended)

    async def _close_period(self, remote_ip: str, source: _Source) -> None:
        refused, channels = source.refused, sorted(source.channels)
        first, last = source.first_refused, source.last_refused
        source.until, source.refused, source.channels = None, 0, set()
        source.first_refused = source.last_refused = None
        source.failures.clear()
        if self._audit is None or not refused:
            return
        assert first is not None and last is not None
        await self._audit.record(
            AuditEvent(
                actor="system",
                channel=Channel.SYSTEM,
                action="auth.throttled",
                target=remote_ip,
                outcome=Outcome.FAILURE,
                remote_ip=remote_ip,
                details={
                    "refused": refused,
                    "channels": channels,
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                },
            )
        )
