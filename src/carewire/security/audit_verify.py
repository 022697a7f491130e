"""Checking the audit trail's chain and MACs: the pure core of :meth:`AuditTrail.verify`.

Theory of operation. The trail is read in id order, a page at a time, and fed
to a :class:`ChainChecker` made with the verifier's :class:`AuditKey` and
every epoch marker (``audit_mac_epochs``). Before any entry:

- each marker of the held key must carry a valid MAC (a forged or edited
  marker is tampering);
- the *first* marker of the held key splits the trail: entries up to its
  ``after_id`` are checked by hash only (written before MACs began, or under a
  key since replaced) and must end in the hash it recorded; every later entry
  must belong to a marker of the held key: a marker of another key after it
  means someone claims a key this installation does not hold;
- with entries but no marker of the held key at all, nothing can be checked
  against the key: either the key is not the one the trail was written with,
  or the markers were removed (a finding either way).

Each entry must then link to the one before it and match its hash (as
before MACs), and, in an epoch of the held key, carry the MAC of its hash.
Recomputing the SHA-256 chain after an edit (the re-chain attack) therefore
fails at the edited entry: its new hash has no valid MAC.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from carewire.security.audit import (
    GENESIS,
    AuditEntry,
    AuditTrail,
    MacEpoch,
    VerifyResult,
    check_chain,
    epoch_input,
    mac_input,
)
from carewire.security.audit_key import AuditKey

#: Reasons, by what was found (the CLI prints them after the entry's id).
MAC_MISSING = (
    "it carries no MAC although MACs were in force (the MAC was stripped, or it was forged)"
)
MAC_WRONG = (
    "its MAC does not match (the entry was rewritten and the chain recomputed "
    "without the audit key, or inserted)"
)
ANCHOR_BROKEN = (
    "the entries before it no longer end in the hash recorded when MACs began "
    "(an earlier entry was rewritten, removed or inserted)"
)


def epoch_is_valid(key: AuditKey, epoch: MacEpoch) -> bool:
    """Whether ``epoch`` is a marker ``key`` made."""
    data = epoch_input(epoch.key_id, epoch.after_id, epoch.after_hash, epoch.at)
    return epoch.key_id == key.key_id and key.is_mac(data, epoch.mac)


@dataclass(slots=True)
class ChainChecker:
    """Checks pages of entries in id order (see the module docstring).

    Attributes:
        key: The verifier's key.
        epochs: Every epoch marker, in any order.
        problem: What is wrong with the markers themselves (set at construction).
        authenticated: Entries whose MAC was checked so far.
        hash_only: Entries checked by hash only so far.
    """

    key: AuditKey
    epochs: Sequence[MacEpoch]
    problem: str = ""
    authenticated: int = 0
    hash_only: int = 0
    _prev_hash: str = GENESIS
    _prev_id: int = 0
    _starts: list[int] = field(default_factory=list)  # after_id of each marker, sorted
    _held: list[bool] = field(default_factory=list)
    _anchor: MacEpoch | None = None

    def __post_init__(self) -> None:
        ordered = sorted(self.epochs, key=lambda e: (e.after_id, e.id))
        held = [e for e in ordered if e.key_id == self.key.key_id]
        forged = [e for e in held if not epoch_is_valid(self.key, e)]
        if forged:
            self.problem = (
                f"epoch marker {forged[0].id} (MACs from entry {forged[0].after_id + 1} on) "
                "carries no valid MAC: it was forged or edited"
            )
            return
        self._anchor = held[0] if held else None
        if self._anchor is not None:
            start = self._anchor.after_id
            alien = [e for e in ordered if e.after_id >= start and not self._held_(e)]
            if alien:
                self.problem = (
                    f"epoch marker {alien[0].id} claims entries from {alien[0].after_id + 1} on "
                    f"for key {alien[0].key_id}, which this installation does not hold, after "
                    f"MACs with its key began at entry {self._anchor.after_id + 1}"
                )
                return
        self._starts = [e.after_id for e in ordered]
        self._held = [self._held_(e) for e in ordered]

    def _held_(self, epoch: MacEpoch) -> bool:
        return epoch.key_id == self.key.key_id

    def _is_in_held_epoch(self, entry_id: int) -> bool:
        i = bisect.bisect_left(self._starts, entry_id) - 1  # last marker with after_id < id
        return i >= 0 and self._held[i]

    def _breaks_anchor(self, entry_id: int) -> bool:
        """Whether ``entry_id`` is the first after the anchor and what precedes it is not."""
        anchor = self._anchor
        if anchor is None or not self._prev_id <= anchor.after_id < entry_id:
            return False
        return self._prev_id != anchor.after_id or self._prev_hash != anchor.after_hash

    def feed(self, entries: Sequence[AuditEntry]) -> tuple[int, str] | None:
        """The position and reason of the first bad entry of this page, or None."""
        for i, entry in enumerate(entries):
            bad = check_chain([entry], self._prev_hash)
            if bad is not None:
                return i, bad[1]
            if self._breaks_anchor(entry.id):
                return i, ANCHOR_BROKEN
            if self._is_in_held_epoch(entry.id):
                if not entry.mac:
                    return i, MAC_MISSING
                if not self.key.is_mac(mac_input(entry.hash), entry.mac):
                    return i, MAC_WRONG
                self.authenticated += 1
            else:
                self.hash_only += 1
            self._prev_hash, self._prev_id = entry.hash, entry.id
        return None

    def finish(self) -> str:
        """What is wrong once every entry was fed (empty: nothing)."""
        anchor = self._anchor
        if anchor is None:
            if self.hash_only:
                return (
                    f"no entry is authenticated with this installation's audit key "
                    f"(key id {self.key.key_id}): the trail was written with another key, "
                    "or the markers where MACs begin were removed"
                )
            return ""
        if self._prev_id < anchor.after_id:
            return (
                f"the trail ends at entry {self._prev_id}, before entry {anchor.after_id} "
                "recorded when MACs began: entries were removed from the end"
            )
        return ""

    def notes(self) -> tuple[str, ...]:
        """What the operator should know: entries checked by hash only, and why."""
        if self._anchor is None or not self.hash_only:
            return ()
        return (
            f"{self.hash_only} entries before entry {self._anchor.after_id + 1} were written "
            "before MACs began (or under a key no longer held): checked by hash, anchored "
            "by the MAC'd marker",
        )


async def verify_trail(trail: AuditTrail, batch: int = 1000) -> VerifyResult:
    """Walk the whole trail and report the first entry that breaks the chain or its MAC."""
    checker = ChainChecker(trail.store.key, await trail.store.epochs())
    if checker.problem:
        return VerifyResult(ok=False, checked=0, reason=checker.problem)
    checked = 0
    page: list[AuditEntry] = []
    async for entry in trail.store.iterate(batch=batch):
        page.append(entry)
        if len(page) < batch:
            continue
        bad = checker.feed(page)
        if bad is not None:
            return _broken(page, bad, checked, checker.authenticated)
        checked, page = checked + len(page), []
    bad = checker.feed(page)
    if bad is not None:
        return _broken(page, bad, checked, checker.authenticated)
    checked += len(page)
    problem = checker.finish()
    return VerifyResult(
        ok=not problem,
        checked=checked,
        reason=problem,
        authenticated=checker.authenticated,
        notes=checker.notes(),
    )


def _broken(
    page: list[AuditEntry], bad: tuple[int, str], checked: int, authenticated: int
) -> VerifyResult:
    index, reason = bad
    return VerifyResult(
        ok=False,
        checked=checked + index + 1,
        first_bad_id=page[index].id,
        reason=reason,
        authenticated=authenticated,
    )
