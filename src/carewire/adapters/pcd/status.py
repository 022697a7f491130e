"""Building the PCD-05 alarm status (ORA^R41) sent back to the alarm's reporter.

Sans-IO: the alarm's record values, the status and ``now`` in, the message's
bytes out. One message reports one status of one alarm: ``delivered`` (a
clinician's device received the alert), ``read`` (it was displayed),
``accepted`` or ``rejected`` (the clinician's response). The structure::

    MSH  ORA^R41^ORA_R41, version 2.6, a fresh control id
    PID  PID-3: the patient's MRN, when the alarm had one
    PV1  PV1-3: the location as the alarm reported it
    OBR  OBR-3: the alarm identifier and its sender; OBR-4: the alarm type
    OBX  1: dissemination status   (local code ALERT_STATUS)
    OBX  2: the clinician          (local code ALERT_RESPONDER), when known

OBX-14 of the status is when it happened. No patient name or demographics are
sent: the reporter knows the alarm by its identifier.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from carewire.adapters.hl7.ack import escape, new_control_id
from carewire.adapters.hl7.message import MessageHeader

VERSION = "2.6"


class AlarmStatus(enum.StrEnum):
    """What happened to the alert of an alarm."""

    DELIVERED = "delivered"
    READ = "read"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """One PCD-05 to send.

    Attributes:
        alarm: The alarm record's id (for tracking, not sent).
        alarm_id: OBR-3.1.
        sender: The reporter's application (OBR-3.2 and MSH-5).
        code: The alarm type's MDC code and name (OBR-4).
        code_name: The MDC name.
        mrn: PID-3.1, or empty.
        location: PV1-3 as reported, components escaped (``ICU^101^A^Main``), or empty.
        status: The status.
        responder: The clinician's login, or empty.
        at: When it happened.
    """

    alarm: int
    alarm_id: str
    sender: str
    code: str = ""
    code_name: str = ""
    mrn: str = ""
    location: str = ""
    status: AlarmStatus
    responder: str = ""
    at: datetime


_HEADER = MessageHeader()


def _e(value: str) -> str:
    return escape(value, _HEADER)


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def build_status(
    report: StatusReport,
    *,
    now: datetime,
    application: str = "CAREWIRE",
    facility: str = "",
    control_id: str | None = None,
) -> bytes:
    """The ORA^R41 message reporting ``report``."""
    msh = [
        "MSH",
        "^~\\&",
        _e(application),
        _e(facility),
        _e(report.sender),
        "",
        _ts(now),
        "",
        "ORA^R41^ORA_R41",
        control_id or new_control_id(),
        "P",
        VERSION,
        "",
        "",
        "AL",
        "NE",
    ]
    segments = ["|".join(msh)]
    if report.mrn:
        segments.append(f"PID|||{_e(report.mrn)}^^^^MR")
    if report.location:
        # Stored already in PV1-3 form (components joined by ^), so not escaped again.
        segments.append(f"PV1||I|{report.location}")
    code = "^".join((_e(report.code), _e(report.code_name), "MDC")) if report.code else ""
    segments.append(f"OBR|1||{_e(report.alarm_id)}^{_e(report.sender)}|{code}|||{_ts(report.at)}")
    segments.append(
        f"OBX|1|ST|ALERT_STATUS^Alert dissemination status^L|1|{report.status.value}"
        f"||||||F|||{_ts(report.at)}"
    )
    if report.responder:
        segments.append(
            f"OBX|2|ST|ALERT_RESPONDER^Responding clinician^L|1|{_e(report.responder)}"
            f"||||||F|||{_ts(report.at)}"
        )
    return ("\r".join(segments) + "\r").encode("utf-8")
