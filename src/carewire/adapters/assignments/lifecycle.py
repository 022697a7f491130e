"""The assignment lifecycle, pure: which change an assignment needs, given its record and `now`.

Nothing here awaits, reads a clock or touches storage. The runtime
(:mod:`.runtime`) reads assignment records, asks these functions what to do,
queues the answers (:mod:`.queue`) and writes them through the dataset
service.

States (seed 003): ``next`` (assigned, not started), ``active`` (on shift
now), ``expired`` (ended after being active) and ``deleted`` (ended before it
started). Our reading of the once-a-minute query, whose list of groups the
seed leaves out:

1. ``next`` whose start has come (``start_time`` unset or ``<= now``) and whose end has not
   passed → ``active``, ``accepted_at = now``;
2. ``next`` whose end has passed → ``deleted``, ``ended_at = now``;
3. ``active`` whose end has passed → ``expired``, ``ended_at = now``.

An assignment without ``end_time`` never ends by itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

#: The separator between an assignment id and the id of the record a copy was made from.
COPY_SEPARATOR: Final = "~"


class State(enum.StrEnum):
    """ASSIGNMENTS.state."""

    NEXT = "next"
    ACTIVE = "active"
    EXPIRED = "expired"
    DELETED = "deleted"


class Kind(enum.StrEnum):
    """What a change does to an assignment."""

    INITIAL = "initial"  # no state yet → next
    ACTIVATE = "activate"  # next → active
    DELETE = "delete"  # next → deleted
    EXPIRE = "expire"  # active → expired
    MOVE = "move"  # a next (or new, location-less) assignment's location changes
    COPY = "copy"  # an active one is expired and copied at the new location


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """The fields of an ASSIGNMENTS record the manager reads.

    Attributes:
        id: The record id.
        state: Its state ("" when it has none yet).
        start_time: When it starts.
        end_time: When it ends.
        assigned_at: When it was first seen.
        location: LOCATIONS record id.
        patient: PATIENTS record id (a patient-based assignment).
    """

    id: int
    state: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    assigned_at: datetime | None = None
    location: int | None = None
    patient: int | None = None

    @classmethod
    def of(cls, record_id: int, values: Mapping[str, object]) -> Assignment:
        """Read one from a record's values (unknown types count as unset)."""
        return cls(
            id=record_id,
            state=_text(values.get("state")),
            start_time=_time(values.get("start_time")),
            end_time=_time(values.get("end_time")),
            assigned_at=_time(values.get("assigned_at")),
            location=_int(values.get("location")),
            patient=_int(values.get("patient")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One write the manager wants.

    Attributes:
        assignment: The ASSIGNMENTS record id.
        kind: What it does.
        expect: The state the record must still have when the change is applied (a change
            that no longer fits is dropped then, so a stale queued change is harmless).
        values: The fields to set on the record (for a copy: on the expired original).
        location: The new location's record id (moves and copies; None: no location).
    """

    assignment: int
    kind: Kind
    expect: str
    values: Mapping[str, object] = field(default_factory=dict)
    location: int | None = None

    @property
    def key(self) -> tuple[int, Kind]:
        """What makes two changes the same change (the queue holds one of each)."""
        return (self.assignment, self.kind)


def initial(a: Assignment, now: datetime) -> Change | None:
    """A new assignment without a state becomes ``next`` (``assigned_at`` now unless set)."""
    if a.state:
        return None
    return Change(
        assignment=a.id,
        kind=Kind.INITIAL,
        expect="",
        values={"state": State.NEXT.value, "assigned_at": a.assigned_at or now},
    )


def due(a: Assignment, now: datetime) -> Change | None:
    """The minute tick's change for ``a``, if it needs one (see the module docstring)."""
    has_ended = a.end_time is not None and a.end_time <= now
    if a.state == State.NEXT:
        if has_ended:
            return _end(a, Kind.DELETE, State.DELETED, now)
        if a.start_time is None or a.start_time <= now:
            return Change(
                assignment=a.id,
                kind=Kind.ACTIVATE,
                expect=State.NEXT.value,
                values={"state": State.ACTIVE.value, "accepted_at": now},
            )
    elif a.state == State.ACTIVE and has_ended:
        return _end(a, Kind.EXPIRE, State.EXPIRED, now)
    return None


def patient_left(assignments: Iterable[Assignment], now: datetime) -> list[Change]:
    """The patient is no longer admitted: active ones expire, next ones are deleted."""
    changes: list[Change] = []
    for a in assignments:
        if a.state == State.ACTIVE:
            changes.append(_end(a, Kind.EXPIRE, State.EXPIRED, now))
        elif a.state == State.NEXT:
            changes.append(_end(a, Kind.DELETE, State.DELETED, now))
    return changes


def follow_bed(a: Assignment, location: int | None, now: datetime) -> Change | None:
    """Move a patient-based assignment to the location of the patient's bed (None: no bed).

    A ``next`` assignment (or an active one that has no location yet) simply
    changes location; an active one with a location is expired and copied at
    the new location, so the record of who covered which bed stays true.
    """
    if a.location == location or a.state not in (State.NEXT, State.ACTIVE):
        return None
    if a.state == State.NEXT or a.location is None:
        return Change(assignment=a.id, kind=Kind.MOVE, expect=a.state, location=location)
    return Change(
        assignment=a.id,
        kind=Kind.COPY,
        expect=State.ACTIVE.value,
        values={"state": State.EXPIRED.value, "ended_at": now},
        location=location,
    )


def copy_values(
    original: Mapping[str, object], original_id: int, location: int | None, now: datetime
) -> dict[str, object]:
    """The values of the active copy made at ``location`` of the record ``original_id``.

    Its id is the original's base id (before any earlier ``~``) followed by
    ``~`` and the original record's id, so every copy has its own key and
    copies of copies do not grow the id.
    """
    values = {k: v for k, v in original.items() if k not in ("ended_at", "id")}
    base = str(original.get("assignment_id", "")).split(COPY_SEPARATOR, 1)[0]
    values.update(
        assignment_id=f"{base}{COPY_SEPARATOR}{original_id}",
        state=State.ACTIVE.value,
        location=location,
        assigned_at=now,
        accepted_at=now,
    )
    return values


def location_id(prefix: str, bed_id: int) -> str:
    """The LOCATIONS.location_id the manager uses for a bed (its own prefix + the bed's id)."""
    return f"{prefix}{bed_id}"


def location_name(room_number: str, bed_number: str) -> str:
    """A bed location's name, from its room and bed numbers (``101 A``)."""
    return f"{room_number} {bed_number}".strip()


def _end(a: Assignment, kind: Kind, state: State, now: datetime) -> Change:
    return Change(
        assignment=a.id, kind=kind, expect=a.state, values={"state": state.value, "ended_at": now}
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
