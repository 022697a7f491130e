"""Reading HL7 v2 messages (HL7 v2.5 chapter 2) through the ``hl7`` package.

The parsing itself is the ``hl7`` package's; this module gives it the shape the
adapters need: a typed :class:`MessageHeader` read from MSH, and accessors that
answer an empty string for a field, repetition or component that is absent
instead of raising (HL7 v2.5 §2.6: "an absent field … is not an error").
"""

from __future__ import annotations

from dataclasses import dataclass

import hl7

from carewire.adapters.hl7.errors import RemoteProtocolError

DEFAULT_ENCODING_CHARACTERS = "^~\\&"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageHeader:
    """The MSH fields an acknowledgement and a receiver need (HL7 v2.5 §2.14.9)."""

    field_separator: str = "|"
    encoding_characters: str = DEFAULT_ENCODING_CHARACTERS
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_code: str = ""
    trigger_event: str = ""
    message_structure: str = ""
    control_id: str = ""
    processing_id: str = ""
    version_id: str = ""


UNREADABLE = MessageHeader()


def decode(message: bytes) -> str:
    """The message as text: UTF-8 (a superset of ASCII), falling back to Latin-1."""
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")


def parse(message: bytes) -> hl7.Message:
    """Parse a whole message; segment ends may be CR, LF or CRLF.

    Raises:
        RemoteProtocolError: It does not start with a readable MSH segment.
    """
    text = decode(message).replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise RemoteProtocolError("the message does not start with an MSH segment")
    try:
        return hl7.parse(text)
    except (hl7.ParseException, IndexError, ValueError) as exc:
        raise RemoteProtocolError(f"unreadable message: {exc}") from exc


def text(segment: hl7.Segment, field: int, component: int = 1, *, repeat: int = 1) -> str:
    """One component of a field, unescaped; ``""`` when it is absent."""
    try:
        value = segment.extract_field(1, field, repeat, component, 1)
    except (IndexError, ValueError):
        return ""
    return str(value)


def segments(message: hl7.Message, name: str) -> list[hl7.Segment]:
    """Every segment with this id, in order."""
    return [seg for seg in message if str(seg[0]) == name]


def first(message: hl7.Message, name: str) -> hl7.Segment | None:
    """The first segment with this id, or None."""
    found = segments(message, name)
    return found[0] if found else None


def header_of(message: hl7.Message) -> MessageHeader:
    """The typed header of a parsed message."""
    msh = message.segment("MSH")
    return MessageHeader(
        field_separator=str(msh(1)),
        encoding_characters=str(msh(2)),
        sending_application=text(msh, 3),
        sending_facility=text(msh, 4),
        receiving_application=text(msh, 5),
        receiving_facility=text(msh, 6),
        message_code=text(msh, 9, 1),
        trigger_event=text(msh, 9, 2),
        message_structure=text(msh, 9, 3),
        control_id=text(msh, 10),
        processing_id=text(msh, 11),
        version_id=text(msh, 12),
    )


def read_header(message: bytes) -> MessageHeader:
    """The header of a message read from its first segment only (cheap; for rejects).

    Raises:
        RemoteProtocolError: The first segment is not a readable MSH.
    """
    first_segment = message.replace(b"\n", b"\r").split(b"\r", 1)[0]
    return header_of(parse(first_segment))
