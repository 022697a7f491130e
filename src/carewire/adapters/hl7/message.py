"""Reading HL7 v2 messages (HL7 v2.5 chapter 2).

A message is split into segments at once and each segment into fields only when
a field of it is first read: a feed reads a handful of fields of a few segments,
so most of a message is never split further. :func:`text` answers one component
of a field, unescaped (HL7 v2.5 §2.7), and an empty string for a field,
repetition or component that is absent instead of raising (§2.6: "an absent
field … is not an error").

We read messages ourselves rather than through a general HL7 tree: building the
whole tree cost about a third of a millisecond a message, the largest share of an
ADT message's handling, and a general library's unescaping logs the field it
could not read, which may hold patient data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from carewire.adapters.hl7.errors import RemoteProtocolError

DEFAULT_ENCODING_CHARACTERS = "^~\\&"

# Formatting escapes (§2.7.6) and their plain-text stand-ins; highlighting (\H\, \N\)
# is dropped, character-set switches (\C..\, \M..\) and unknown sequences too.
_FORMATTING = {
    ".br": "\r",
    ".sp": "\r",
    ".ce": "\r",
    ".fi": "",
    ".nf": "",
    ".in": "    ",
    ".ti": "    ",
    ".sk": " ",
}


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


@dataclass(frozen=True, slots=True)
class Delimiters:
    """A message's delimiters, from MSH-1 and MSH-2 (§2.5.4)."""

    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as sent."""
        return self.component + self.repetition + self.escape + self.subcomponent


class Segment:
    """One segment; its fields are split on first use."""

    __slots__ = ("_fields", "_raw", "delimiters", "name")

    def __init__(self, raw: str, delimiters: Delimiters) -> None:
        self._raw = raw
        self.delimiters = delimiters
        self._fields: list[str] | None = None
        self.name = raw.split(delimiters.field, 1)[0]

    def field(self, number: int) -> str:
        """Field ``number`` as sent (escaped, with its repetitions); ``""`` when absent.

        MSH-1 is the field separator itself and MSH-2 the encoding characters.
        """
        fields = self._fields
        if fields is None:
            fields = self._fields = self._raw.split(self.delimiters.field)
        if self.name == "MSH":  # MSH-1 is the separator between "MSH" and MSH-2
            if number == 1:
                return self.delimiters.field
            number -= 1
        return fields[number] if 0 < number < len(fields) else ""

    def __repr__(self) -> str:
        return f"<Segment {self.name}>"


class Message:
    """A message: its segments, in order, and its delimiters."""

    __slots__ = ("delimiters", "segments")

    def __init__(self, segments: list[Segment], delimiters: Delimiters) -> None:
        self.segments = segments
        self.delimiters = delimiters

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    def segment(self, name: str) -> Segment:
        """The first segment with this id.

        Raises:
            KeyError: There is none.
        """
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(name)


def decode(message: bytes) -> str:
    """The message as text: UTF-8 (a superset of ASCII), falling back to Latin-1."""
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")


def parse(message: bytes) -> Message:
    """Split a whole message into segments; segment ends may be CR, LF or CRLF.

    Raises:
        RemoteProtocolError: It does not start with a readable MSH segment.
    """
    text_ = decode(message).replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text_.startswith("MSH") or len(text_) < 8:
        raise RemoteProtocolError("the message does not start with an MSH segment")
    field = text_[3]
    delimiters = Delimiters(field, text_[4], text_[5], text_[6], text_[7])
    if len(set(text_[3:8])) != 5 or any(c.isalnum() or c.isspace() for c in text_[3:8]):
        raise RemoteProtocolError(f"unreadable message: MSH delimiters {text_[3:8]!r}")
    msh2 = text_[4:].split(field, 1)[0]
    if len(msh2) not in (4, 5):  # 2.7+ may add a fifth, the truncation character
        raise RemoteProtocolError("unreadable message: MSH-2 is not four encoding characters")
    segments = [Segment(raw, delimiters) for raw in text_.split("\r") if raw.strip()]
    return Message(segments, delimiters)


def text(segment: Segment, field: int, component: int = 1, *, repeat: int = 1) -> str:
    """One component of a field (its first subcomponent), unescaped; ``""`` when absent."""
    value = segment.field(field)
    if not value:
        return ""
    if segment.name == "MSH" and field in (1, 2):
        return value if component == 1 and repeat == 1 else ""
    d = segment.delimiters
    if repeat != 1 or d.repetition in value:
        repeats = value.split(d.repetition)
        if repeat > len(repeats):
            return ""
        value = repeats[repeat - 1]
    if component != 1 or d.component in value:
        components = value.split(d.component)
        if component > len(components):
            return ""
        value = components[component - 1]
    if d.subcomponent in value:
        value = value.split(d.subcomponent, 1)[0]
    return unescape(value, d) if d.escape in value else value


def unescape(value: str, d: Delimiters) -> str:
    """``value`` with its escape sequences (§2.7) replaced.

    Delimiter escapes (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``) become the delimiter, ``\\Xhh…\\``
    the characters of those hex bytes (read as Latin-1), formatting escapes their
    plain-text stand-in; unknown sequences are dropped. An escape character
    without its closing one is kept as it is.
    """
    by_letter = {
        "F": d.field,
        "S": d.component,
        "T": d.subcomponent,
        "R": d.repetition,
        "E": d.escape,
    }
    out: list[str] = []
    rest = value
    while True:
        start = rest.find(d.escape)
        end = rest.find(d.escape, start + 1) if start >= 0 else -1
        if end < 0:
            out.append(rest)
            return "".join(out)
        out.append(rest[:start])
        out.append(_sequence(rest[start + 1 : end], by_letter))
        rest = rest[end + 1 :]


def _sequence(seq: str, by_letter: dict[str, str]) -> str:
    if seq in by_letter:
        return by_letter[seq]
    if seq in _FORMATTING:
        return _FORMATTING[seq]
    if seq[:3] in _FORMATTING and seq[3:].lstrip("+-").isdigit():  # e.g. \.sp2\: repeated
        return _FORMATTING[seq[:3]] * max(0, min(int(seq[3:]), 100))
    if seq[:1] == "X" and len(seq) % 2 == 1:
        try:
            return bytes.fromhex(seq[1:]).decode("latin-1")
        except ValueError:
            return ""
    return ""


def segments(message: Message, name: str) -> list[Segment]:
    """Every segment with this id, in order."""
    return [seg for seg in message.segments if seg.name == name]


def first(message: Message, name: str) -> Segment | None:
    """The first segment with this id, or None."""
    found = segments(message, name)
    return found[0] if found else None


def header_of(message: Message) -> MessageHeader:
    """The typed header of a parsed message."""
    msh = message.segment("MSH")
    return MessageHeader(
        field_separator=msh.field(1),
        encoding_characters=msh.field(2),
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
