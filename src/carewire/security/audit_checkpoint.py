"""Signed checkpoints of the audit trail's head, kept outside the database.

A checkpoint records the last entry's id and hash, how many entries there
were, when, and the audit key's id, signed with the key's Ed25519 key
(:mod:`carewire.security.audit_key`). Checkpoints are appended as JSON lines
to ``checkpoints.jsonl`` (mode 0600, directory 0700) in a directory outside the
data directory, and written to the log too. The chain and its MACs show any
entry edited, removed, inserted or reordered; only the checkpoints show
entries removed from the *end* of the trail, since the chain of what remains
is intact: :func:`check` compares each checkpoint with the trail.

Theory of operation: a checkpoint is taken at the server's start and stop,
every ``audit.checkpoint_interval`` while it runs (when the head moved), and by
``carewire audit checkpoint``. Entries appended after the last checkpoint can
be removed unnoticed; the interval bounds that window.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from carewire.clock import Clock
from carewire.security.audit import AuditStore
from carewire.security.audit_key import AuditKey

log = logging.getLogger(__name__)

#: The file checkpoints are appended to, in the configured directory.
FILE_NAME = "checkpoints.jsonl"
_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """One signed statement of the trail's head.

    Attributes:
        entry_id: The last entry's id (0: the trail was empty).
        hash: That entry's hash.
        entries: How many entries the trail held.
        at: When it was taken (UTC).
        key_id: The key that signed it.
        signature: Ed25519 over :meth:`payload` (base64).
    """

    entry_id: int
    hash: str
    entries: int
    at: datetime
    key_id: str
    signature: str = ""

    def payload(self) -> bytes:
        """What the signature covers: every other field, as canonical JSON."""
        body = {
            "v": _VERSION,
            "entry_id": self.entry_id,
            "hash": self.hash,
            "entries": self.entries,
            "at": self.at.isoformat(),
            "key_id": self.key_id,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_line(self) -> str:
        """The checkpoint as one JSON line (without the newline)."""
        body = json.loads(self.payload())
        body["signature"] = self.signature
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        """Parse :meth:`to_line`'s output.

        Raises:
            ValueError: Not a checkpoint line of a known version.
        """
        body = json.loads(line)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("not a version 1 checkpoint")
        try:
            return cls(
                entry_id=int(body["entry_id"]),
                hash=str(body["hash"]),
                entries=int(body["entries"]),
                at=datetime.fromisoformat(str(body["at"])),
                key_id=str(body["key_id"]),
                signature=str(body["signature"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or wrong field: {exc}") from None


def signed(key: AuditKey, *, entry_id: int, hash: str, entries: int, at: datetime) -> Checkpoint:
    """A checkpoint of the given head, signed with ``key``."""
    unsigned = Checkpoint(entry_id=entry_id, hash=hash, entries=entries, at=at, key_id=key.key_id)
    return Checkpoint(
        entry_id=entry_id,
        hash=hash,
        entries=entries,
        at=at,
        key_id=key.key_id,
        signature=key.sign(unsigned.payload()),
    )


def append_line(directory: Path, checkpoint: Checkpoint) -> Path:
    """Append ``checkpoint`` to the directory's file (0600; the directory 0700); return its path.

    The line reaches the disk (fsync) before this returns.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (checkpoint.to_line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_lines(directory: Path) -> list[tuple[int, Checkpoint | None]]:
    """Every line of the directory's file with its number; None for a line that is no checkpoint.

    No file: no lines.
    """
    try:
        text = (directory / FILE_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    found: list[tuple[int, Checkpoint | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, Checkpoint.from_line(line)))
        except ValueError:
            found.append((number, None))
    return found


async def take(
    store: AuditStore, directory: Path, at: datetime, *, to_log: bool = True
) -> Checkpoint:
    """Sign the trail's head now, append it to the file and (``to_log``) the log."""
    entry_id, digest, count = await store.head()
    checkpoint = signed(store.key, entry_id=entry_id, hash=digest, entries=count, at=at)
    append_line(directory, checkpoint)
    if to_log:
        log.info("audit checkpoint %s", checkpoint.to_line())
    return checkpoint


@dataclass(slots=True)
class CheckpointReport:
    """What :func:`check` found.

    Attributes:
        checked: Checkpoints whose signature verified and that were compared with the trail.
        problems: Evidence of tampering, one sentence each (the file or the trail).
        notes: What could not be checked, and why.
    """

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _authentic(
    key: AuditKey, lines: Sequence[tuple[int, Checkpoint | None]], report: CheckpointReport
) -> list[Checkpoint]:
    good: list[Checkpoint] = []
    for number, cp in lines:
        if cp is None:
            report.problems.append(f"checkpoint line {number} is not a checkpoint (altered)")
        elif cp.key_id != key.key_id:
            report.notes.append(
                f"checkpoint line {number} is signed by key {cp.key_id}, not held: not checked"
            )
        elif not key.is_signature(cp.payload(), cp.signature):
            report.problems.append(
                f"checkpoint line {number}: the signature does not verify (forged or altered)"
            )
        else:
            good.append(cp)
    return good


async def check(store: AuditStore, directory: Path) -> CheckpointReport:
    """Compare every checkpoint in ``directory`` with the trail (see the module docstring)."""
    report = CheckpointReport()
    good = _authentic(store.key, read_lines(directory), report)
    head_id, _, count = await store.head()
    hashes = await store.hashes([cp.entry_id for cp in good if cp.entry_id])
    for cp in good:
        when = cp.at.isoformat()
        if cp.entry_id > head_id:
            report.problems.append(
                f"the trail ends at entry {head_id}, but the checkpoint of {when} saw entries "
                f"up to {cp.entry_id}: entries were removed from the end"
            )
        elif cp.entry_id and cp.entry_id not in hashes:
            report.problems.append(
                f"entry {cp.entry_id}, seen by the checkpoint of {when}, is missing (removed)"
            )
        elif cp.entry_id and hashes[cp.entry_id] != cp.hash:
            report.problems.append(
                f"entry {cp.entry_id} differs from the checkpoint of {when} (rewritten)"
            )
        elif cp.entries > count:
            report.problems.append(
                f"the trail holds {count} entries, but the checkpoint of {when} saw "
                f"{cp.entries}: entries were removed"
            )
        report.checked += 1
    return report


class Checkpointer:
    """Takes the server's checkpoints: at start, when the head moved since the last, at stop."""

    def __init__(self, store: AuditStore, directory: Path, clock: Clock, *, to_log: bool) -> None:
        """Sign ``store``'s head into ``directory`` (and the log when ``to_log``)."""
        self._store = store
        self._directory = directory
        self._clock = clock
        self._to_log = to_log
        self._last: tuple[int, str] | None = None

    async def tick(self, *, force: bool = False) -> Checkpoint | None:
        """Take a checkpoint if the head moved since the last one (always when ``force``)."""
        entry_id, digest, _ = await self._store.head()
        if not force and self._last == (entry_id, digest):
            return None
        cp = await take(self._store, self._directory, self._clock.now(), to_log=self._to_log)
        self._last = (cp.entry_id, cp.hash)
        return cp
