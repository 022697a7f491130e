"""Reading a PCD-04 Report Alarm (ORU^R40, IHE PCD TF-2 ACM) into an :class:`AlarmReport`.

Theory of operation: :func:`read_report` is sans-IO. It takes one message's
bytes and returns what the alarm says, or raises :class:`Refusal` carrying
the acknowledgement code (AR: not understood, AE: understood but unusable),
the HL7 table 0357 error code and a reason without patient data. The order of
checks is the order a receiver reads: the header (MSH-9 message type and
event, MSH-10 control id, MSH-12 version), the segment sequence, then the
alarm's own fields.

The message structure accepted (one alarm per message)::

    MSH [SFT…] [PID] [PV1] OBR [NTE…] OBX [NTE…] [OBX [NTE…]…]

Which OBX says what (MDC codes, ISO/IEEE 11073-10101):

- the *event* OBX: the first whose OBX-3 names an ``MDC_EVT_…`` code (else the
  first OBX); OBX-3 is the alarm type, OBX-8 its priority (PH, PM, PL, PN) and
  kind (SP physiological, ST technical, SA advisory), OBX-18 the equipment;
- ``MDC_ATTR_EVENT_PHASE`` (68481): start, start_only, continue, update,
  escalate, deescalate, inactivate, present, end, absent, reset, stop, cancel;
- ``MDC_ATTR_ALARM_STATE`` (68482): the device's alarm state, kept as text;
- ``MDC_ATTR_ALERT_TYPE`` (68484): SP/ST/SA when OBX-8 does not carry it;
- ``MDC_ATTR_ALERT_TEXT``: the alarm's text, if sent;
- the first other OBX is the source measurement (code, value and units).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from carewire.adapters.hl7.ack import AckCode, ErrorCode, escape
from carewire.adapters.hl7.errors import RemoteProtocolError
from carewire.adapters.hl7.message import Message, MessageHeader, Segment, header_of, parse, text

MESSAGE_CODE = "ORU"
TRIGGER_EVENT = "R40"
#: ACM messages are HL7 v2.6; later v2 versions are read the same way.
VERSIONS = ("2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9")
PRIORITIES = ("PH", "PM", "PL", "PN")
KINDS = ("SP", "ST", "SA")

#: Event phase (MDC_ATTR_EVENT_PHASE) → the record's ``state``.
PHASE_STATES: dict[str, str] = {
    "start": "active",
    "start_only": "active",
    "continue": "active",
    "update": "active",
    "escalate": "active",
    "deescalate": "active",
    "inactivate": "active",
    "present": "active",
    "end": "ended",
    "absent": "ended",
    "reset": "ended",
    "stop": "ended",
    "cancel": "cancelled",
    "cancelled": "cancelled",
}

_PHASE = ("68481", "MDC_ATTR_EVENT_PHASE")
_ALARM_STATE = ("68482", "MDC_ATTR_ALARM_STATE")
_ALERT_TYPE = ("68484", "MDC_ATTR_ALERT_TYPE")
_ALERT_TEXT = ("", "MDC_ATTR_ALERT_TEXT")


class Refusal(Exception):
    """The message is answered AR or AE, with a reason that holds no patient data.

    Attributes:
        code: MSA-1 (AR or AE).
        error: ERR-3 (HL7 table 0357).
        reason: MSA-3 / ERR-8, and the audit trail's reason.
        header: The message's header, when it could be read.
    """

    def __init__(
        self, code: AckCode, error: ErrorCode, reason: str, header: MessageHeader | None = None
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.error = error
        self.reason = reason
        self.header = header


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """PV1-3, the assigned patient location (PL): point of care, room, bed, facility."""

    point_of_care: str = ""
    room: str = ""
    bed: str = ""
    facility: str = ""

    @property
    def code(self) -> str:
        """PV1-3 as HL7 components (``ICU^101^A^Main``), each escaped."""
        parts = (self.point_of_care, self.room, self.bed, self.facility)
        return "^".join(escape(p, MessageHeader()) for p in parts).rstrip("^")

    @property
    def label(self) -> str:
        """The parts that are present, separated by spaces (``ICU 101 A``)."""
        return " ".join(p for p in (self.point_of_care, self.room, self.bed) if p)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmReport:
    """One alarm indication as the device reported it.

    Attributes:
        header: The message header (for the ACK and duplicate detection).
        alarm_id: OBR-3.1, the alarm's identifier (the filler order number).
        sender: MSH-3.1, the sending application (with ``alarm_id``, the record's key).
        source: The equipment (OBX-18.1 of the event OBX, else MSH-3.1).
        code: The alarm type's MDC code (OBX-3.1 of the event OBX).
        code_name: Its name (OBX-3.2, e.g. ``MDC_EVT_HI``).
        text: Text for people (the alert text, else OBX-5, OBX-3.5 or the code name).
        measurement: The source measurement as ``name value units``.
        priority: PH, PM, PL, PN, or empty when absent.
        kind: SP, ST, SA, or empty.
        phase: The event phase (``start`` when absent).
        state: ``active``, ``ended`` or ``cancelled`` (from the phase).
        device_state: MDC_ATTR_ALARM_STATE as sent.
        alarm_time: OBR-7, else OBX-14 of the event OBX, else MSH-7.
        mrn: PID-3, the identifier of type MR (else the first).
        location: PV1-3.
    """

    header: MessageHeader
    alarm_id: str
    sender: str
    source: str
    code: str
    code_name: str
    text: str
    measurement: str = ""
    priority: str = ""
    kind: str = ""
    phase: str = "start"
    state: str = "active"
    device_state: str = ""
    alarm_time: datetime
    mrn: str = ""
    location: Location = Location()


def read_report(message: bytes, *, now: datetime) -> AlarmReport:
    """Read one ORU^R40; ``now`` stands in for an alarm without any time.

    Raises:
        Refusal: AR for a header, version, event or structure it cannot take;
            AE for an alarm whose own fields are missing or out of their tables.
    """
    try:
        msg = parse(message)
        header = header_of(msg)
    except (RemoteProtocolError, IndexError, ValueError) as exc:
        raise Refusal(AckCode.AR, ErrorCode.SEGMENT_SEQUENCE_ERROR, "unreadable MSH") from exc
    check_header(header)
    names = [seg.name for seg in msg]
    check_sequence(names, header)
    return _report(msg, header, now)


def check_header(header: MessageHeader) -> None:
    """Refuse (AR) a header without type, control id or version, or one we do not take."""
    missing = [
        label
        for label, value in (
            ("MSH-3 sending application", header.sending_application),
            ("MSH-9 message type", header.message_code),
            ("MSH-10 message control id", header.control_id),
            ("MSH-12 version id", header.version_id),
        )
        if not value
    ]
    if missing:
        raise Refusal(
            AckCode.AR,
            ErrorCode.REQUIRED_FIELD_MISSING,
            f"missing {', '.join(missing)}",
            header,
        )
    if header.message_code != MESSAGE_CODE:
        raise Refusal(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"unsupported message type {header.message_code[:10]} (expected ORU)",
            header,
        )
    if header.trigger_event != TRIGGER_EVENT:
        raise Refusal(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_EVENT_CODE,
            f"unsupported event {header.trigger_event[:10]} (expected R40 of ORU)",
            header,
        )
    if header.version_id not in VERSIONS:
        raise Refusal(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_VERSION_ID,
            f"unsupported version {header.version_id[:10]} (expected 2.6 or later)",
            header,
        )


# The segment grammar as data: (state, segment) → state; "obx" is the only final state.
_SEQUENCE: dict[tuple[str, str], str] = {
    ("msh", "SFT"): "msh",
    ("msh", "PID"): "pid",
    ("msh", "PV1"): "pv1",  # a technical alarm may name only the location
    ("msh", "OBR"): "obr",
    ("pid", "PV1"): "pv1",
    ("pid", "OBR"): "obr",
    ("pv1", "OBR"): "obr",
    ("obr", "NTE"): "obr",
    ("obr", "OBX"): "obx",
    ("obx", "NTE"): "obx",
    ("obx", "OBX"): "obx",
}


def check_sequence(names: list[str], header: MessageHeader) -> None:
    """Refuse (AR) segments out of the ORU^R40 order (one alarm: one OBR, one or more OBX)."""
    state = "msh"
    for position, name in enumerate(names[1:], start=2):
        nxt = _SEQUENCE.get((state, name))
        if nxt is None:
            raise Refusal(
                AckCode.AR,
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                f"segment {name[:3]} (number {position}) is out of order for ORU R40",
                header,
            )
        state = nxt
    if state != "obx":
        raise Refusal(
            AckCode.AR,
            ErrorCode.SEGMENT_SEQUENCE_ERROR,
            "ORU R40 needs an OBR followed by at least one OBX",
            header,
        )


def _segments(msg: Message, name: str) -> list[Segment]:
    return [seg for seg in msg if seg.name == name]


def _report(msg: Message, header: MessageHeader, now: datetime) -> AlarmReport:
    [obr] = _segments(msg, "OBR")
    obxs = _segments(msg, "OBX")
    alarm_id = text(obr, 3)
    if not alarm_id:
        raise Refusal(
            AckCode.AE, ErrorCode.REQUIRED_FIELD_MISSING, "missing OBR-3 alarm identifier", header
        )
    event = next((o for o in obxs if text(o, 3, 2).startswith("MDC_EVT")), obxs[0])
    flags = _repeats(event, 8)
    phase = (_attr(obxs, _PHASE) or "start").lower()
    if phase not in PHASE_STATES:
        raise Refusal(
            AckCode.AE,
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"unknown event phase {phase[:20]!r}",
            header,
        )
    kind = next((f for f in flags if f in KINDS), "") or _attr(obxs, _ALERT_TYPE).upper()
    stamp = text(obr, 7) or text(event, 14) or _msh_time(msg)
    return AlarmReport(
        header=header,
        alarm_id=alarm_id,
        sender=header.sending_application,
        source=text(event, 18) or header.sending_application,
        code=text(event, 3, 1),
        code_name=text(event, 3, 2),
        text=_text_of(obxs, event),
        measurement=_measurement(obxs, event),
        priority=next((f for f in flags if f in PRIORITIES), ""),
        kind=kind if kind in KINDS else "",
        phase=phase,
        state=PHASE_STATES[phase],
        device_state=_attr(obxs, _ALARM_STATE),
        alarm_time=_time(stamp, header) if stamp else now,
        mrn=_mrn(msg),
        location=_location(msg),
    )


def _repeats(segment: Segment, field: int, limit: int = 8) -> list[str]:
    out = []
    for repeat in range(1, limit + 1):
        value = text(segment, field, repeat=repeat)
        if not value and repeat > 1:
            break
        out.append(value.upper())
    return out


def _is(segment: Segment, code: tuple[str, str]) -> bool:
    number, name = code
    return text(segment, 3, 2) == name or (bool(number) and text(segment, 3, 1) == number)


def _attr(obxs: list[Segment], code: tuple[str, str]) -> str:
    found = next((o for o in obxs if _is(o, code)), None)
    return "" if found is None else text(found, 5)


_ATTRS = (_PHASE, _ALARM_STATE, _ALERT_TYPE, _ALERT_TEXT)


def _text_of(obxs: list[Segment], event: Segment) -> str:
    return (
        _attr(obxs, _ALERT_TEXT)
        or text(event, 5)
        or text(event, 3, 5)
        or text(event, 3, 2)
        or text(event, 3, 1)
    )


def _measurement(obxs: list[Segment], event: Segment) -> str:
    source = next((o for o in obxs if o is not event and not any(_is(o, c) for c in _ATTRS)), None)
    if source is None:
        return ""
    name = text(source, 3, 2) or text(source, 3, 5) or text(source, 3, 1)
    units = text(source, 6, 2) or text(source, 6, 1)
    return " ".join(p for p in (name, text(source, 5), units) if p)


def _mrn(msg: Message) -> str:
    pids = _segments(msg, "PID")
    if not pids:
        return ""
    ids = [(text(pids[0], 3, 1, repeat=r), text(pids[0], 3, 5, repeat=r)) for r in range(1, 6)]
    ids = [(value, kind) for value, kind in ids if value]
    return next((v for v, k in ids if k.upper() == "MR"), ids[0][0] if ids else "")


def _location(msg: Message) -> Location:
    pv1s = _segments(msg, "PV1")
    if not pv1s:
        return Location()
    pv1 = pv1s[0]
    return Location(
        point_of_care=text(pv1, 3, 1),
        room=text(pv1, 3, 2),
        bed=text(pv1, 3, 3),
        facility=text(pv1, 3, 4),
    )


def _msh_time(msg: Message) -> str:
    return text(msg.segment("MSH"), 7)


def _time(value: str, header: MessageHeader) -> datetime:
    try:
        return parse_dtm(value)
    except ValueError:
        raise Refusal(
            AckCode.AE, ErrorCode.DATA_TYPE_ERROR, "an alarm time is not an HL7 DTM", header
        ) from None


def parse_dtm(value: str) -> datetime:
    """An HL7 DTM (``YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]``) as an aware datetime.

    A time without an offset is read as UTC.

    Raises:
        ValueError: It is not a DTM.
    """
    body, offset = value, ""
    for sign in "+-":
        if sign in value[4:]:
            at = value.index(sign, 4)
            body, offset = value[:at], value[at:]
    digits, _, fraction = body.partition(".")
    if not digits.isdigit() or len(digits) not in (4, 6, 8, 10, 12, 14):
        raise ValueError(f"not an HL7 DTM: {value[:30]!r}")
    padded = digits + "0101000000"[len(digits) - 4 :] if len(digits) < 14 else digits
    tz = UTC
    if offset:
        if len(offset) != 5 or not offset[1:].isdigit():
            raise ValueError(f"not an HL7 time zone: {offset!r}")
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        tz = timezone((-1 if offset[0] == "-" else 1) * timedelta(minutes=minutes))
    micros = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    parsed = datetime.strptime(padded, "%Y%m%d%H%M%S").replace(microsecond=micros, tzinfo=tz)
    return parsed.astimezone(UTC)
