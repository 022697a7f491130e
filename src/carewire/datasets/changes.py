"""Change events of one write transaction: the values they carry, one event per record.

Theory of operation: every write of a :class:`~carewire.datasets.service.Batch`
produces a :class:`~carewire.datasets.model.RecordChanged`, and a
:class:`ChangeSet` folds those of the same record into one with :func:`merge`,
so the subscribers see what the transaction did to each record rather than
how it got there:

- the first write's ``old`` and the last write's ``new``, kind, origin and time;
- a record created in the transaction stays a CREATE, whatever followed;
- a record created and then deleted in the transaction produced no event at all;
- events go out in the order records were first written.

The values an event carries are built here too (:func:`created_values`,
:func:`changed_fields`, :func:`linked_after`). Everything is pure: no I/O,
no clock (the service stamps each event before adding it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from carewire.datasets.model import (
    ChangeKind,
    Dataset,
    Record,
    RecordChanged,
    RecordId,
    Values,
    holds_reference,
)


def merge(first: RecordChanged, later: RecordChanged) -> RecordChanged | None:
    """The one event that stands for ``first`` followed by ``later`` (of the same record).

    Args:
        first: What the transaction did to the record so far (possibly merged already).
        later: The write that came after it.

    Returns:
        None when ``first`` created the record and ``later`` deleted it (nothing
        happened, as far as the outside sees); otherwise ``later`` with the old
        values of ``first``, and the kind CREATE if ``first`` created the record.
    """
    if first.kind is ChangeKind.CREATE and later.kind is ChangeKind.DELETE:
        return None
    kind = ChangeKind.CREATE if first.kind is ChangeKind.CREATE else later.kind
    return dataclasses.replace(later, kind=kind, old=first.old)


class ChangeSet:
    """The change events of one transaction, merged per record."""

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[tuple[str, int], RecordChanged] = {}

    def add(self, event: RecordChanged) -> None:
        """Fold ``event`` into what the transaction did to its record (see :func:`merge`)."""
        key = (event.dataset, int(event.record_id))
        first = self._events.get(key)
        if first is None:
            self._events[key] = event
            return
        merged = merge(first, event)
        if merged is None:
            del self._events[key]
        else:  # an existing key keeps its place: the order of first writes
            self._events[key] = merged

    @property
    def events(self) -> list[RecordChanged]:
        """One event per written record, in the order records were first written."""
        return list(self._events.values())


def written_record(event: RecordChanged) -> Record:
    """The record as a write left it (its old values after a delete)."""
    return Record(dataset=event.dataset, id=event.record_id, values=event.new or event.old or {})


def column_fields(ds: Dataset) -> list[str]:
    """Attributes and to-one links: the values every stored record has."""
    return [a.name for a in ds.attributes] + [
        ln.name for ln in ds.links if holds_reference(ds.name, ln)
    ]


def created_values(
    ds: Dataset,
    row: Mapping[str, object],
    many: Mapping[str, Sequence[RecordId]],
    blank: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A new record's values, as its CREATE event carries them.

    Args:
        ds: The record's dataset.
        row: The column values written (attributes and to-one links).
        many: The targets of each m:n link written.
        blank: ``dict.fromkeys(column_fields(ds))``, when the caller has it already.

    Returns:
        Every column (None where ``row`` has no value), then each m:n link's
        targets, sorted.
    """
    base = dict.fromkeys(column_fields(ds)) if blank is None else blank
    out = {**base, **row}
    for name, ids in many.items():
        out[name] = sorted(ids)
    return out


def changed_fields(before: Values, after: Mapping[str, object]) -> dict[str, object]:
    """The entries of ``after`` whose value differs from ``before`` (what to write)."""
    return {k: v for k, v in after.items() if before.get(k) != v}


def linked_after(
    before: Sequence[RecordId], targets: Sequence[RecordId], *, add: bool
) -> list[RecordId]:
    """An m:n link's targets after adding (or removing) ``targets``, sorted."""
    if add:
        return sorted(set(before) | set(targets))
    return sorted(set(before) - set(targets))
