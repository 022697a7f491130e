"""The audit trail: an append-only, hash-chained record of every access and administrative act.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and this
entry's canonical JSON, so changing, removing or reordering any entry breaks
every later link; :meth:`AuditTrail.verify` walks the chain. Entries hold
identifiers only: never message bodies, patient data, passwords or tokens.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from carewire.clock import Clock

log = logging.getLogger(__name__)

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64


class Channel(enum.StrEnum):
    """Where an act came from."""

    CONSOLE = "console"
    API = "api"
    CLI = "cli"
    XMPP = "xmpp"
    SYSTEM = "system"


class Outcome(enum.StrEnum):
    """Whether it succeeded."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """What to record.

    Attributes:
        actor: Who (``console:alice``, ``api:gateway``, ``cli``, ``xmpp:nurse.joy``, ``system``).
        channel: Where from.
        action: What, dotted (``login``, ``adapter.update``, ``certificate.upload``).
        target: What it was done to (identifiers only).
        outcome: Success or failure.
        remote_ip: The peer's address, if any.
        details: Extra facts (before/after of an administrative change, a reason); no PHI.
    """

    actor: str
    channel: Channel
    action: str
    target: str = ""
    outcome: Outcome = Outcome.SUCCESS
    remote_ip: str = ""
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """A stored entry.

    Attributes:
        id: Position in the trail.
        at: When (UTC).
        event: What was recorded.
        prev_hash: The previous entry's hash.
        hash: This entry's hash.
    """

    id: int
    at: datetime
    event: AuditEvent
    prev_hash: str
    hash: str


def entry_hash(prev_hash: str, at: datetime, event: AuditEvent) -> str:
    """SHA-256 (hex) chaining ``event`` at ``at`` to the entry before it."""
    body = json.dumps(
        {
            "at": at.isoformat(),
            "actor": event.actor,
            "channel": event.channel.value,
            "action": event.action,
            "target": event.target,
            "outcome": event.outcome.value,
            "remote_ip": event.remote_ip,
            "details": event.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


class AuditStore(Protocol):
    """Storage for the trail (see :mod:`carewire.storage.audit`)."""

    async def append(self, at: datetime, event: AuditEvent) -> AuditEntry:
        """Append one entry, chaining it to the last one atomically."""


class AuditTrail:
    """Records audit events."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` now."""
        entry = await self._store.append(self._clock.now(), event)
        log.debug("audit %s %s by %s: %s", event.action, event.target, event.actor, event.outcome)
        return entry
