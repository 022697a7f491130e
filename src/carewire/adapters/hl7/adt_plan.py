"""What an ADT event changes in PATIENTS (and the locations): the planned writes; sans-IO.

Theory of operation: :func:`plan` turns an :class:`~.adt_message.AdtMessage`
into a :class:`Plan` (one :class:`PatientWrite` per patient, and the merges of
A40) by the table below; :mod:`.adt_apply` carries it out in one transaction.
A plan that cannot be applied whatever the datasets hold (a transfer without
its new location, a bed named without its room, no facility) raises
:class:`~carewire.adapters.hl7.ack.Rejected` (AE).

======  ================  ============================================  ==========
event   PATIENTS.status   bed                                           admit_date
======  ================  ============================================  ==========
A01     admitted          PV1-3 (none when PV1-3 names no bed)          PV1-44
A04     registered [1]    PV1-3 (none when PV1-3 names no bed)          PV1-44
A02     (unchanged)       PV1-3, which is required                      (unchanged)
A03     discharged        cleared                                       (unchanged)
A08     (unchanged)       PV1-3 when PV1-3 is given, else unchanged     PV1-44
A11     cancelled         cleared                                       cleared
A12     (unchanged)       PV1-3 (the location before the transfer), or  (unchanged)
                          PV1-6 when PV1-3 is empty; one is required
A13     admitted          PV1-3 (none when PV1-3 names no bed)          (unchanged)
A17     (unchanged)       each patient's PV1-3 bed; both are required   (unchanged)
A40     (unchanged)       MRG-1's patient is merged into PID-3's        (unchanged)
======  ================  ============================================  ==========

[1] ``emergency`` when PV1-2 is E, ``outpatient`` when it is O.

Every event also writes the demographics it carries (PID-5 names, PID-7, PID-8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.adt_message import NULL, AdtMessage, Event, Location, PatientVisit


class Status:
    """The values the feed writes to PATIENTS.status."""

    ADMITTED = "admitted"
    REGISTERED = "registered"
    EMERGENCY = "emergency"
    OUTPATIENT = "outpatient"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"


class BedChange(Enum):
    """What a write does to PATIENTS.bed."""

    KEEP = "keep"
    CLEAR = "clear"
    SET = "set"  # to the bed of ``PatientWrite.location`` (none when it names no bed)


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientWrite:
    """One patient's planned write (an upsert by MRN).

    Attributes:
        mrn: The patient's key.
        values: Attributes to write (None deletes a value).
        bed: What happens to the bed.
        location: Where the patient is, for ``BedChange.SET``.
    """

    mrn: str
    values: Mapping[str, object] = field(default_factory=dict)
    bed: BedChange = BedChange.KEEP
    location: Location | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Merge:
    """A40: the patient ``prior_mrn`` becomes part of ``mrn``."""

    prior_mrn: str
    mrn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything one message writes, in order."""

    event: Event
    patients: tuple[PatientWrite, ...]
    merges: tuple[Merge, ...] = ()


_STATUS: dict[Event, str] = {
    Event.A01: Status.ADMITTED,
    Event.A03: Status.DISCHARGED,
    Event.A04: Status.REGISTERED,
    Event.A11: Status.CANCELLED,
    Event.A13: Status.ADMITTED,
}
_A04_CLASS = {"E": Status.EMERGENCY, "O": Status.OUTPATIENT}
_SETS_BED = {Event.A01, Event.A02, Event.A04, Event.A12, Event.A13, Event.A17}
_CLEARS_BED = {Event.A03, Event.A11}
_NEEDS_LOCATION = {Event.A02: "a transfer", Event.A12: "a cancelled transfer", Event.A17: "a swap"}


def plan(message: AdtMessage) -> Plan:
    """The writes ``message`` asks for.

    Raises:
        Rejected: AE, the message cannot be applied whatever the datasets hold.
    """
    event = message.event
    if event is Event.A40:
        return Plan(
            event=event,
            patients=tuple(
                PatientWrite(mrn=v.mrn, values=_demographics(v)) for v in message.visits
            ),
            merges=tuple(_merge(v) for v in message.visits),
        )
    return Plan(event=event, patients=tuple(_write(event, v) for v in message.visits))


def _write(event: Event, visit: PatientVisit) -> PatientWrite:
    values = dict(_demographics(visit))
    status = _STATUS.get(event)
    if event is Event.A04:
        status = _A04_CLASS.get(visit.patient_class, Status.REGISTERED)
    if status is not None:
        values["status"] = status
    if event in (Event.A01, Event.A04, Event.A08) and visit.admitted_at is not None:
        values["admit_date"] = None if visit.admitted_at == NULL else visit.admitted_at
    if event is Event.A11:
        values["admit_date"] = None
    location = visit.location
    if event is Event.A12 and location is None:
        location = visit.prior_location
    if event in _NEEDS_LOCATION and (location is None or (event is Event.A17 and not location.bed)):
        what = "with a bed " if event is Event.A17 else ""
        raise _ae(
            ErrorCode.REQUIRED_FIELD_MISSING,
            f"PV1-3 (assigned location) {what}is required for {_NEEDS_LOCATION[event]}",
        )
    if event in _CLEARS_BED:
        return PatientWrite(mrn=visit.mrn, values=values, bed=BedChange.CLEAR)
    if event in _SETS_BED or (event is Event.A08 and location is not None):
        _check_location(location)
        return PatientWrite(mrn=visit.mrn, values=values, bed=BedChange.SET, location=location)
    return PatientWrite(mrn=visit.mrn, values=values)


def _demographics(visit: PatientVisit) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in (
        ("last_name", visit.last_name),
        ("first_name", visit.first_name),
        ("dob", visit.dob),
        ("sex", visit.sex),
    ):
        if value is not None:
            out[name] = None if value == NULL else value
    return out


def _check_location(location: Location | None) -> None:
    """A bed needs its room, and a room its facility."""
    if location is None or not (location.bed or location.room):
        return
    if location.bed and not location.room:
        raise _ae(ErrorCode.REQUIRED_FIELD_MISSING, "PV1-3 names a bed but no room")
    if not location.facility:
        raise _ae(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PV1-3 names no facility and the adapter has no default facility",
        )


def _merge(visit: PatientVisit) -> Merge:
    if not visit.prior_mrn:
        raise _ae(ErrorCode.REQUIRED_FIELD_MISSING, "MRG-1 (prior patient identifier) is required")
    return Merge(prior_mrn=visit.prior_mrn, mrn=visit.mrn)


def _ae(error: ErrorCode, reason: str) -> Rejected:
    return Rejected(ack=AckCode.AE, error=error, reason=reason)
