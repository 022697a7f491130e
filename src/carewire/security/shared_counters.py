"""What the nodes of a cluster count together: the seams the shared counters plug into.

The authentication throttle (:mod:`carewire.security.throttle`) and the XMPP
login's in-memory lockout counters (:mod:`carewire.core.auth`: unknown logins,
the addresses a login's failures came from) count in this process on one
node. On a cluster they count in Redis through these protocols
(:mod:`carewire.cluster.counters` implements them), so a client cannot
multiply its attempts by spreading them over the nodes. The counters kept in
the database (an account's failed logins and lock, console users', PINs')
are shared through it already and stay there.

Every method may raise :class:`SharedCountersDown`: the caller then counts
locally, as on one node, until the shared counters answer again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from carewire.errors import CarewireError


class SharedCountersDown(CarewireError):
    """Counters shared by the nodes of a cluster cannot be reached now: count locally."""

    code = "shared-counters-down"


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedVerdict:
    """What the shared window says after a failure was counted.

    Attributes:
        failures: Failures of the source inside the window (0 when already throttled).
        until: When its throttle period ends (None: not throttled).
        started: Whether this very failure began the period.
    """

    failures: int
    until: datetime | None
    started: bool


class SharedFailureWindow(Protocol):
    """Failures per source address shared by the nodes of a cluster (raises SharedCountersDown)."""

    async def add_failure(
        self, source: str, now: datetime, *, window: timedelta, max_failures: int
    ) -> SharedVerdict:
        """Count a failure of ``source`` at ``now``; a period begins at ``max_failures``."""

    async def throttled_until(self, source: str, now: datetime) -> datetime | None:
        """When ``source``'s throttle period ends (None when it is not throttled at ``now``)."""


class SharedLoginFailures(Protocol):
    """The XMPP login's lockout counters kept in memory on one node, shared on a cluster."""

    async def unknown_failed(self, login: str, at: datetime) -> None:
        """Count a failed login of an account that does not exist."""

    async def unknown_failures(self, login: str) -> tuple[int, datetime | None]:
        """An unknown login's failures and the time of the last one."""

    async def source_failed(self, login: str, remote_ip: str) -> None:
        """Note that a counted failure of ``login`` came from ``remote_ip``."""

    async def failure_sources(self, login: str) -> frozenset[str]:
        """The addresses ``login``'s counted failures came from (since its last success)."""

    async def forget_sources(self, login: str) -> None:
        """``login`` signed in: its failures' addresses no longer matter."""
