"""Reading ADT messages (HL7 v2.5 chapter 3) into typed visits; sans-IO.

Theory of operation: :func:`read_adt` takes a message :mod:`.message`
parsed and its header, checks what makes the message understandable and raises
:class:`~carewire.adapters.hl7.ack.Rejected` otherwise:

- AR (the message is not understood; the sender must fix its interface): a
  missing MSH-9, MSH-10 or MSH-12, a type other than ADT, an event we do not
  handle, a version outside :data:`SUPPORTED_VERSIONS`, a processing id other
  than the configured one, and segments missing or out of order
  (:data:`STRUCTURES`, over the segments we read);
- AE (understood, but the content cannot be applied): no MRN in PID-3, a date
  that is not an HL7 date.

It returns an :class:`AdtMessage`: the event and, for each PID/PV1 group, the
patient's identity, demographics and locations. What to write is decided by
:mod:`.adt_plan`; nothing here knows the datasets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum

from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.message import Message, MessageHeader, Segment, text

#: HL7 v2 versions whose ADT fields we read (PID-3/5/7/8, PV1-2/3/6/44, MRG-1 are the same).
SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9"}
)

#: A field holding ``""`` (two double quotes) means "delete the value" (HL7 v2.5 §2.5.3).
NULL = '""'

_MAX_REPEATS = 10


class Event(StrEnum):
    """The ADT trigger events the feed handles."""

    A01 = "A01"  # admit / visit notification
    A02 = "A02"  # transfer a patient
    A03 = "A03"  # discharge / end visit
    A04 = "A04"  # register a patient
    A08 = "A08"  # update patient information
    A11 = "A11"  # cancel admit / visit notification
    A12 = "A12"  # cancel transfer
    A13 = "A13"  # cancel discharge / end visit
    A17 = "A17"  # swap patients
    A40 = "A40"  # merge patient - patient identifier list


_VISIT = r"MSH( EVN)? PID PV1"
#: The order of the segments we read, per event (other segments may come between).
STRUCTURES: dict[Event, re.Pattern[str]] = {
    **{e: re.compile(_VISIT) for e in Event if e not in (Event.A17, Event.A40)},
    Event.A17: re.compile(r"MSH( EVN)? PID PV1 PID PV1"),
    Event.A40: re.compile(r"MSH( EVN)?( PID MRG( PV1)?)+"),
}
_EXPECTED = {
    Event.A17: "MSH [EVN] PID PV1 PID PV1",
    Event.A40: "MSH [EVN] {PID MRG [PV1]}",
}
_READ = ("MSH", "EVN", "PID", "PV1", "MRG")


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """An HL7 person location (PL, HL7 v2.5 §2.A.53) as the feed reads it.

    Attributes:
        point_of_care: PL-1, the nursing unit (UNITS.name).
        room: PL-2 (ROOMS.room_number).
        bed: PL-3 (BEDS.bed_number).
        facility: PL-4 (FACILITIES.name); the adapter's facility setting when empty.
    """

    point_of_care: str = ""
    room: str = ""
    bed: str = ""
    facility: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientVisit:
    """One PID/PV1 (or PID/MRG) group.

    Demographic attributes are None when the field is empty (no change), and
    :data:`NULL` when the sender asked to delete the value.

    Attributes:
        mrn: PID-3 (the MR identifier, else the first).
        last_name: PID-5.1.
        first_name: PID-5.2.
        dob: PID-7 (date part).
        sex: PID-8.
        patient_class: PV1-2.
        location: PV1-3 (None when empty).
        prior_location: PV1-6 (None when empty).
        admitted_at: PV1-44.
        prior_mrn: MRG-1 (A40 only).
    """

    mrn: str
    last_name: str | None = None
    first_name: str | None = None
    dob: date | str | None = None
    sex: str | None = None
    patient_class: str = ""
    location: Location | None = None
    prior_location: Location | None = None
    admitted_at: datetime | str | None = None
    prior_mrn: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdtMessage:
    """A readable ADT message.

    Attributes:
        header: Its MSH.
        event: MSH-9.2.
        visits: The PID groups, in order (two for A17, one or more for A40).
    """

    header: MessageHeader
    event: Event
    visits: tuple[PatientVisit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadOptions:
    """How to read messages (from the adapter's settings).

    Attributes:
        tz: The time zone of times sent without an offset.
        processing_id: The MSH-11 accepted (``None``: any).
        facility: The facility of locations whose PL-4 is empty.
    """

    tz: tzinfo = UTC
    processing_id: str | None = "P"
    facility: str = ""


def reject(error: ErrorCode, reason: str, *, ack: AckCode = AckCode.AR) -> Rejected:
    """A rejection (AR unless told otherwise)."""
    return Rejected(ack=ack, error=error, reason=reason)


def read_adt(message: Message, header: MessageHeader, options: ReadOptions) -> AdtMessage:
    """Check and read an ADT message.

    Raises:
        Rejected: AR for a message we do not understand, AE for bad content.
    """
    event = _check_header(header, options)
    names = [seg.name for seg in message if seg.name in _READ]
    if not STRUCTURES[event].fullmatch(" ".join(names)):
        expected = _EXPECTED.get(event, "MSH [EVN] PID PV1")
        raise reject(
            ErrorCode.SEGMENT_SEQUENCE_ERROR,
            f"segments missing or out of order for {event}: {' '.join(names)} "
            f"(expected {expected})",
        )
    visits: list[PatientVisit] = []
    group: list[Segment] = []
    for seg in (s for s in message if s.name in ("PID", "PV1", "MRG")):
        if seg.name == "PID" and group:
            visits.append(_visit(group, options))
            group = []
        group.append(seg)
    visits.append(_visit(group, options))
    return AdtMessage(header=header, event=event, visits=tuple(visits))


def _check_header(header: MessageHeader, options: ReadOptions) -> Event:
    for value, name in (
        (header.message_code, "MSH-9 (message type)"),
        (header.control_id, "MSH-10 (message control id)"),
        (header.version_id, "MSH-12 (version id)"),
    ):
        if not value:
            raise reject(ErrorCode.REQUIRED_FIELD_MISSING, f"{name} is required")
    if header.message_code != "ADT":
        raise reject(
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {header.message_code!r} is not ADT",
        )
    try:
        event = Event(header.trigger_event)
    except ValueError:
        handled = ", ".join(e.value for e in Event)
        raise reject(
            ErrorCode.UNSUPPORTED_EVENT_CODE,
            f"event {header.trigger_event!r} is not handled (handled: {handled})",
        ) from None
    if header.version_id not in SUPPORTED_VERSIONS:
        raise reject(
            ErrorCode.UNSUPPORTED_VERSION_ID,
            f"version {header.version_id!r} is not supported (2.3 to 2.9 are)",
        )
    wanted = options.processing_id
    if wanted is not None and header.processing_id[:1] != wanted:
        raise reject(
            ErrorCode.UNSUPPORTED_PROCESSING_ID,
            f"processing id {header.processing_id!r} is not accepted here ({wanted} is)",
        )
    return event


def _visit(group: list[Segment], options: ReadOptions) -> PatientVisit:
    pid = group[0]
    pv1 = next((s for s in group if s.name == "PV1"), None)
    mrg = next((s for s in group if s.name == "MRG"), None)
    mrn = _mrn(pid, 3)
    if not mrn:
        raise reject(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PID-3 (patient identifier) is required",
            ack=AckCode.AE,
        )
    return PatientVisit(
        mrn=mrn,
        last_name=_optional(text(pid, 5, 1)),
        first_name=_optional(text(pid, 5, 2)),
        dob=_date_field(text(pid, 7), "PID-7"),
        sex=_optional(text(pid, 8)),
        patient_class=text(pv1, 2) if pv1 is not None else "",
        location=_location(pv1, 3, options) if pv1 is not None else None,
        prior_location=_location(pv1, 6, options) if pv1 is not None else None,
        admitted_at=_time_field(text(pv1, 44), "PV1-44", options.tz) if pv1 is not None else None,
        prior_mrn=_mrn(mrg, 1) if mrg is not None else "",
    )


def _mrn(segment: Segment, field: int) -> str:
    """The MR-typed identifier of a CX list (CX-5 = MR), else the first one."""
    first = ""
    for repeat in range(1, _MAX_REPEATS + 1):
        value = text(segment, field, 1, repeat=repeat)
        if not value:
            break
        first = first or value
        if text(segment, field, 5, repeat=repeat) == "MR":
            return value
    return first


def _optional(value: str) -> str | None:
    return value or None


def _location(segment: Segment, field: int, options: ReadOptions) -> Location | None:
    parts = [text(segment, field, i) for i in (1, 2, 3, 4)]
    if not any(parts):
        return None
    return Location(
        point_of_care=parts[0],
        room=parts[1],
        bed=parts[2],
        facility=parts[3] or options.facility,
    )


_TS = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<tz>[+-]\d{4})?"
)


def _date_field(value: str, name: str) -> date | str | None:
    if not value or value == NULL:
        return value or None
    at = _parse_ts(value, name, UTC, needs_day=True)
    return at.date()


def _time_field(value: str, name: str, tz: tzinfo) -> datetime | str | None:
    if not value or value == NULL:
        return value or None
    return _parse_ts(value, name, tz, needs_day=True)


def _parse_ts(value: str, name: str, tz: tzinfo, *, needs_day: bool) -> datetime:
    """An HL7 TS/DTM (``YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]``), timezone-aware."""
    m = _TS.fullmatch(value)
    if m is None or (needs_day and m["d"] is None):
        raise reject(ErrorCode.DATA_TYPE_ERROR, f"{name} is not an HL7 date/time", ack=AckCode.AE)
    zone = tz
    if m["tz"]:
        sign = 1 if m["tz"][0] == "+" else -1
        offset = timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][3:5]))
        zone = timezone(sign * offset)
    try:
        return datetime(
            int(m["y"]),
            int(m["mo"] or 1),
            int(m["d"] or 1),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int((m["f"] or "0").ljust(6, "0")[:6]),
            tzinfo=zone,
        )
    except ValueError:
        raise reject(
            ErrorCode.DATA_TYPE_ERROR, f"{name} is not a valid date/time", ack=AckCode.AE
        ) from None
