"""The audit trail: an append-only, hash-chained, authenticated record of every act and access.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and this
entry's canonical JSON, so changing, removing or reordering any entry breaks
every later link; each entry's ``mac`` is HMAC-SHA-256 of that hash under the
audit key held outside the database (:mod:`carewire.security.audit_key`), so
whoever can write the database but not read the key cannot recompute the
chain after an edit. :func:`~carewire.security.audit_verify.verify_trail` walks both
(:mod:`carewire.security.audit_verify`). Entries hold identifiers only:
never message bodies, patient data, passwords or tokens.

Theory of operation: the store appends an entry by reading the last hash and
inserting the new row in one exclusive transaction, so writers in different
processes (the server and the CLI) keep one chain. Verification re-reads every
row in id order and recomputes each hash from the stored columns; the first
row whose contents do not match its hash (edited) or whose ``prev_hash`` is not
the hash of the row before it (removed, reordered or forged) is reported.

MACs begin at an *epoch marker* (table ``audit_mac_epochs``): the first
append made with a key that is not the latest marker's writes a marker, itself
MAC'd, recording the key's id and the id and hash of the entry before it.
Entries before the first marker of the key a verifier holds (an installation's
entries from before MACs existed, or under a lost key) are checked by hash
only, and that marker anchors them: rewriting them changes the hash it
recorded. Removing entries at the very end leaves no broken link: the signed
checkpoints kept outside the database (:mod:`carewire.security.audit_checkpoint`)
reveal it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, TextIO

from carewire.clock import Clock
from carewire.security.audit_key import AuditKey
from carewire.security.csv_export import SafeDictWriter

log = logging.getLogger(__name__)

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64

#: Column widths of the stored entry; longer values are cut before hashing.
FIELD_LIMITS = {"actor": 200, "action": 100, "target": 300, "remote_ip": 64}

#: Keys whose values never reach the trail, however a caller builds ``details``.
SECRET_KEYS = frozenset(
    {"password", "passwd", "secret", "token", "pin", "passphrase", "private_key", "api_key"}
)
REDACTED = "[redacted]"

#: The columns of an export, in order.
EXPORT_COLUMNS = (
    "id",
    "at",
    "actor",
    "channel",
    "action",
    "target",
    "outcome",
    "remote_ip",
    "details",
    "hash",
)


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


class ExportFormat(enum.StrEnum):
    """How :meth:`AuditTrail.export` writes entries."""

    CSV = "csv"
    JSON = "json"  # JSON lines: one object per entry


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
        mac: HMAC-SHA-256 of ``hash`` under the audit key (empty before MACs began).
    """

    id: int
    at: datetime
    event: AuditEvent
    prev_hash: str
    hash: str
    mac: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MacEpoch:
    """Where entries authenticated with one audit key begin.

    Attributes:
        id: Position among the markers.
        key_id: The key's id (:attr:`AuditKey.key_id`).
        after_id: The id of the last entry before the epoch (0 for none).
        after_hash: That entry's hash (:data:`GENESIS` for none): it anchors every
            entry before the epoch.
        at: When the epoch began (UTC).
        mac: HMAC-SHA-256 of :func:`epoch_input` under the key.
    """

    id: int
    key_id: str
    after_id: int
    after_hash: str
    at: datetime
    mac: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    """The outcome of :func:`~carewire.security.audit_verify.verify_trail`.

    Attributes:
        ok: Whether every link holds.
        checked: How many entries were read (up to and including the first bad one).
        first_bad_id: The id of the first entry that breaks the chain, if any
            (None when ``ok``, or when what is wrong is not one entry).
        reason: Why it breaks the chain (empty when ``ok``).
        authenticated: How many of the checked entries carry a MAC checked with the key.
        notes: What the operator should know that is not tampering (entries
            checked by hash only, and why).
    """

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""
    authenticated: int = 0
    notes: tuple[str, ...] = ()


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


def mac_input(entry_hash: str) -> bytes:
    """What an entry's MAC covers: its hash (which covers its contents and the chain)."""
    return f"carewire-audit-entry\n{entry_hash}".encode()


def epoch_input(key_id: str, after_id: int, after_hash: str, at: datetime) -> bytes:
    """What an epoch marker's MAC covers."""
    return f"carewire-audit-epoch\n{key_id}\n{after_id}\n{after_hash}\n{at.isoformat()}".encode()


def _redact(value: object) -> object:
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if str(k).lower() in SECRET_KEYS else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def storable(at: datetime, event: AuditEvent) -> tuple[datetime, AuditEvent]:
    """``at`` and ``event`` exactly as the store keeps them, so the hash survives a re-read.

    The store applies it before hashing (it is idempotent).

    The time is converted to UTC, text is cut to its column's width, secret
    keys are redacted and ``details`` goes through JSON (tuples become lists,
    other values their ``str``).
    """
    details = json.loads(json.dumps(_redact(event.details), default=str))
    cut = {name: getattr(event, name)[:limit] for name, limit in FIELD_LIMITS.items()}
    return at.astimezone(UTC), replace(event, details=details, **cut)


def check_chain(entries: Sequence[AuditEntry], prev_hash: str) -> tuple[int, str] | None:
    """The position and reason of the first entry not chained to ``prev_hash``, or None.

    A pure step of :func:`~carewire.security.audit_verify.verify_trail`: ``prev_hash`` is
    the hash of the entry before ``entries[0]`` (:data:`GENESIS` at the start of the trail).
    """
    for i, entry in enumerate(entries):
        if entry.prev_hash != prev_hash:
            return i, (
                "its link to the entry before it is broken "
                "(an entry was removed, reordered or inserted)"
            )
        if entry_hash(entry.prev_hash, entry.at, entry.event) != entry.hash:
            return i, "its contents do not match its hash (the entry was edited)"
        prev_hash = entry.hash
    return None


def entry_row(entry: AuditEntry) -> dict[str, object]:
    """One entry as an export row (``details`` as an object)."""
    e = entry.event
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": e.actor,
        "channel": e.channel.value,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome.value,
        "remote_ip": e.remote_ip,
        "details": dict(e.details),
        "hash": entry.hash,
    }


class AuditStore(Protocol):
    """Storage for the trail (see :mod:`carewire.storage.audit`)."""

    @property
    def key(self) -> AuditKey:
        """The key the store authenticates new entries with."""

    async def epochs(self) -> list[MacEpoch]:
        """Every epoch marker, in order."""

    async def latest_epoch_key(self) -> str | None:
        """The key id of the latest epoch marker (None: none yet)."""

    async def head(self) -> tuple[int, str, int]:
        """The last entry's id and hash and the number of entries (``(0, GENESIS, 0)``: none)."""

    async def hashes(self, ids: Sequence[int]) -> dict[int, str]:
        """The hashes of the entries with ``ids`` that exist."""

    async def append(self, at: datetime, event: AuditEvent) -> AuditEntry:
        """Append one entry, chaining it to the last one atomically."""

    async def append_many(self, items: Sequence[tuple[datetime, AuditEvent]]) -> None:
        """Append entries in order, in one transaction."""

    async def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        actor: str | None = None,
        action: str | None = None,
        outcome: Outcome | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[AuditEntry], int]:
        """One page of matching entries (most recent first) and how many match in all."""

    def iterate(
        self, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
    ) -> AsyncIterator[AuditEntry]:
        """Every entry with ``since <= at < until``, in id order, ``batch`` rows per read."""


class AuditTrail:
    """Records, verifies and exports audit events."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @property
    def store(self) -> AuditStore:
        """The store (for queries)."""
        return self._store

    async def record(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` now."""
        entry = await self._store.append(self._clock.now(), event)
        log.debug("audit %s %s by %s: %s", event.action, event.target, event.actor, event.outcome)
        return entry

    async def record_many(self, items: Sequence[tuple[datetime, AuditEvent]]) -> None:
        """Append events that happened at the given times, in order (one transaction)."""
        if items:
            await self._store.append_many(items)

    async def ensure_epoch(self) -> None:
        """Begin MACs with this process's key now, unless the latest epoch is already its.

        The server calls it at start, so that the point where an upgraded
        installation's MACs begin (or a replaced key takes over) is recorded
        by an entry of its own (``audit.key``) rather than by the next act.
        """
        key_id = self._store.key.key_id
        if await self._store.latest_epoch_key() != key_id:
            await self.record(
                AuditEvent(
                    actor="system",
                    channel=Channel.SYSTEM,
                    action="audit.key",
                    target=key_id,
                    details={"note": "entries from this one on are authenticated with this key"},
                )
            )

    async def export(
        self,
        since: datetime,
        until: datetime,
        fmt: ExportFormat,
        out: TextIO,
        *,
        actor: str,
        channel: Channel,
        remote_ip: str = "",
    ) -> int:
        """Write the entries with ``since <= at < until`` to ``out``; return how many.

        The export itself is recorded (``audit.export``) once it is written.
        """
        writer = SafeDictWriter(out, EXPORT_COLUMNS) if fmt is ExportFormat.CSV else None
        if writer is not None:
            writer.writeheader()
        count = 0
        async for entry in self._store.iterate(since, until):
            row = entry_row(entry)
            if writer is not None:
                writer.writerow({**row, "details": json.dumps(row["details"], sort_keys=True)})
            else:
                out.write(json.dumps(row, sort_keys=False, ensure_ascii=False) + "\n")
            count += 1
        await self.record(
            AuditEvent(
                actor=actor,
                channel=channel,
                action="audit.export",
                target=f"{since.isoformat()}/{until.isoformat()}",
                remote_ip=remote_ip,
                details={"format": fmt.value, "entries": count},
            )
        )
        return count
