"""The console dashboard's snapshot of the running system, as plain data.

Imports nothing of the server, so the web console can type against it
without reaching storage (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySummary:
    """The alert latency against its objective.

    Attributes:
        p50: Median, seconds (None: no alert was received yet).
        p99: 99th percentile, seconds.
        count: Alerts measured since the server started.
        objective: The p99 objective, seconds.
    """

    p50: float | None
    p99: float | None
    count: int
    objective: float

    @property
    def is_met(self) -> bool | None:
        """Whether p99 is within the objective (None: nothing measured)."""
        return None if self.p99 is None else self.p99 <= self.objective


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """One adapter or listener: its name, whether it is up, and a short word on it."""

    name: str
    is_up: bool
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemStatus:
    """What the dashboard shows.

    Attributes:
        at: When it was gathered.
        online_users: Accounts with at least one session.
        devices: Bound sessions (one per device and client).
        connections: Open connections by kind.
        open_alerts: Ages of alerts nobody acknowledged yet (last 24 h), oldest first.
        failed_rule_deliveries: Rule firings that ended in Error in the last hour.
        failed_message_deliveries: Messages that could not reach a recipient in the last hour.
        latency: Alert latency (record write → first receipt) against its objective.
        certificate_status: The XMPP certificate's status word (``Valid``, ``Expiring``, …).
        certificate_expires: When it expires.
        certificate_issuer: Who signed it (``self-signed`` or the issuer's name).
        versions: (what, version) pairs: Carewire, Python, the database.
        adapters: Every adapter instance.
        listeners: Every listening port.
    """

    at: datetime
    online_users: int
    devices: int
    connections: dict[str, int]
    open_alerts: tuple[timedelta, ...]
    failed_rule_deliveries: int
    failed_message_deliveries: int
    latency: LatencySummary
    certificate_status: str
    certificate_expires: datetime
    certificate_issuer: str
    versions: tuple[tuple[str, str], ...]
    adapters: tuple[Health, ...]
    listeners: tuple[Health, ...]


#: What the console calls for the dashboard's figures.
StatusSource = Callable[[], Awaitable[SystemStatus]]
