"""Original-mode acknowledgements (HL7 v2.5 §2.9.2): ACK with MSA and ERR.

The receiver answers every message with an ACK whose MSA-1 says what happened:
``AA`` accepted (the change is committed), ``AE`` error (understood but could not
be applied: the sender should not resend it unchanged), ``AR`` reject (not
understood: unsupported event, version, missing header fields). MSA-2 echoes the
message's control id (MSH-10); MSA-3 and an ERR segment carry the reason.
Sans-IO: the time and our control id are arguments.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from carewire.adapters.hl7.errors import Hl7Error, RemoteProtocolError
from carewire.adapters.hl7.message import (
    DEFAULT_ENCODING_CHARACTERS,
    UNREADABLE,
    MessageHeader,
    read_header,
)

ACK_VERSION = "2.5"


class AckCode(StrEnum):
    """HL7 table 0008, original mode."""

    AA = "AA"
    AE = "AE"
    AR = "AR"


class ErrorCode(IntEnum):
    """HL7 table 0357, message error condition codes (ERR-3)."""

    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207


_ERROR_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class Rejected(Hl7Error):
    """A message answered AR or AE instead of being applied.

    Attributes:
        ack: AR (not understood) or AE (understood, not applied).
        error: ERR-3, from table 0357.
        reason: Why, in our own words: no patient data (it is logged and audited).
        detail: A longer reason for the sender and the Error delivery (may quote
            the data platform); the reason when empty.
    """

    code = "hl7-rejected"

    def __init__(self, *, ack: AckCode, error: ErrorCode, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.ack = ack
        self.error = error
        self.reason = reason
        self.detail = detail or reason


def new_control_id() -> str:
    """A fresh MSH-10 for a message we send (20 characters, the v2.5 maximum)."""
    return secrets.token_hex(10)


def escape(value: str, header: MessageHeader) -> str:
    """Escape delimiters in a text value (HL7 v2.5 §2.7.4)."""
    enc = (header.encoding_characters + DEFAULT_ENCODING_CHARACTERS)[:4]
    component, repetition, esc, subcomponent = enc[0], enc[1], enc[2], enc[3]
    out = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (header.field_separator, "F"),
        (component, "S"),
        (subcomponent, "T"),
        (repetition, "R"),
    ):
        out = out.replace(char, f"{esc}{code}{esc}")
    return out.replace("\r", " ").replace("\n", " ")


def build_ack(
    header: MessageHeader,
    code: AckCode,
    *,
    now: datetime,
    text: str = "",
    error: ErrorCode | None = None,
    control_id: str | None = None,
    application: str = "",
    facility: str = "",
) -> bytes:
    """The ACK answering the message whose header is ``header``.

    Args:
        header: The incoming message's header (``UNREADABLE`` when there was none).
        code: MSA-1.
        now: MSH-7 of the ACK.
        text: The reason, for MSA-3 and ERR-8 (no patient data: it is also logged).
        error: ERR-3, from table 0357; an ERR segment is added when given.
        control_id: MSH-10 of the ACK (a fresh one by default).
        application: MSH-3 of the ACK (default: the message's receiving application).
        facility: MSH-4 of the ACK (default: the message's receiving facility).
    """
    sep = header.field_separator or "|"
    enc = header.encoding_characters or DEFAULT_ENCODING_CHARACTERS
    comp = enc[0]

    def e(value: str) -> str:
        return escape(value, header)

    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"
    msh = [
        "MSH",
        enc,
        e(application or header.receiving_application),
        e(facility or header.receiving_facility),
        e(header.sending_application),
        e(header.sending_facility),
        stamp,
        "",
        comp.join(("ACK", e(header.trigger_event), "ACK")),
        control_id or new_control_id(),
        e(header.processing_id or "P"),
        e(header.version_id or ACK_VERSION),
    ]
    segments = [sep.join(msh), sep.join(["MSA", code.value, e(header.control_id), e(text)])]
    if error is not None:
        err3 = comp.join((str(int(error)), _ERROR_TEXT[error], "HL70357"))
        severity = "W" if code is AckCode.AA else "E"
        segments.append(sep.join(["ERR", "", "", err3, severity, "", "", "", e(text)]))
    return ("\r".join(segments) + "\r").encode("utf-8")


def reject_unreadable(
    message: bytes,
    *,
    code: AckCode,
    reason: str,
    now: datetime,
    error: ErrorCode = ErrorCode.APPLICATION_INTERNAL_ERROR,
) -> bytes:
    """An AR or AE for a message whose content we could not use.

    Echoes the MSH when it can be read; otherwise answers with an empty MSA-2.
    """
    try:
        header = read_header(message)
    except RemoteProtocolError:
        header = UNREADABLE
    return build_ack(header, code, now=now, text=reason, error=error)


def ack_code(reply: bytes) -> AckCode | None:
    """MSA-1 of an acknowledgement, or None when it has no readable MSA."""
    at = reply.find(b"MSA")
    if at < 0 or (at > 0 and reply[at - 1] not in b"\r\n"):
        return None
    value = reply[at + 4 : at + 6]
    try:
        return AckCode(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
