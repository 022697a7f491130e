"""The HL7 v2 reader: fields, repetitions, components and escapes (HL7 v2.5 §2.5–2.7)."""

from __future__ import annotations

import pytest

from carewire.adapters.hl7.errors import RemoteProtocolError
from carewire.adapters.hl7.message import first, header_of, parse, read_header, segments, text

MSG = (
    "MSH|^~\\&|ADT1|GOOD HEALTH|CAREWIRE|CW|20260301080000||ADT^A01^ADT_A01|MSG-7|P|2.5\r"
    "EVN|A01|20260301080000\r"
    "PID|1||123^^^H^PI~456^^^H^MR||DOE^JANE^Q||19600101|F\r"
    "PV1|1|I|4W^401^A^Main&Campus|||\r"
    "NTE|1||Fever \\F\\ rash \\S\\ 2\\T\\3 \\R\\ \\E\\ end"
    "\\.br\\next \\X41\\\\H\\bold\\N\\ \\Zzz\\ x\r"
)


def test_the_header_is_read_from_msh() -> None:
    h = header_of(parse(MSG.encode()))
    assert h.field_separator == "|"
    assert h.encoding_characters == "^~\\&"
    assert (h.sending_application, h.sending_facility) == ("ADT1", "GOOD HEALTH")
    assert (h.message_code, h.trigger_event, h.message_structure) == ("ADT", "A01", "ADT_A01")
    assert (h.control_id, h.processing_id, h.version_id) == ("MSG-7", "P", "2.5")


def test_repetitions_components_and_subcomponents() -> None:
    msg = parse(MSG.encode())
    pid = first(msg, "PID")
    assert pid is not None
    assert text(pid, 3) == "123"
    assert text(pid, 3, 5) == "PI"
    assert text(pid, 3, 1, repeat=2) == "456"
    assert text(pid, 3, 5, repeat=2) == "MR"
    assert text(pid, 3, repeat=3) == ""  # no third repetition
    assert text(pid, 5, 2) == "JANE"
    assert text(pid, 5, 9) == ""  # no ninth component
    assert text(pid, 40) == ""  # beyond the last field
    pv1 = msg.segment("PV1")
    assert text(pv1, 3, 4) == "Main"  # the first subcomponent
    assert text(pv1, 5) == ""


def test_escape_sequences_are_replaced() -> None:
    nte = parse(MSG.encode()).segment("NTE")
    assert text(nte, 3) == "Fever | rash ^ 2&3 ~ \\ end\rnext Abold  x"


def test_segments_keep_their_order_and_any_line_ending() -> None:
    crlf = MSG.replace("\r", "\r\n").encode()
    lf = MSG.replace("\r", "\n").encode()
    for raw in (MSG.encode(), crlf, lf):
        msg = parse(raw)
        assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1", "NTE"]
        assert len(segments(msg, "PID")) == 1
    assert first(parse(MSG.encode()), "OBX") is None


def test_other_delimiters_and_a_fifth_encoding_character() -> None:
    raw = b"MSH#*$!%#A#B#C#D#20260301##ORU*R40#9#P#2.6\rPID#1##X*Y$Z\r"
    msg = parse(raw)
    assert header_of(msg).trigger_event == "R40"
    assert text(msg.segment("PID"), 3, 2) == "Y"
    assert text(msg.segment("PID"), 3, repeat=2) == "Z"
    v27 = b"MSH|^~\\&#|A|B|C|D|20260301||ADT^A08|9|P|2.7\r"
    assert header_of(parse(v27)).encoding_characters == "^~\\&#"


def test_a_latin1_message_is_read() -> None:
    raw = MSG.replace("DOE", "Dö").encode("latin-1")
    assert text(parse(raw).segment("PID"), 5) == "Dö"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"PID|1||123",
        b"MSH|^~",
        b"MSH|^^\\&|A|B",  # a delimiter twice
        b"MSH|^~\\A|A|B",  # a letter as delimiter
        b"MSH|^~\\&XYZ|A|B",  # MSH-2 too long
    ],
)
def test_an_unreadable_header_is_refused(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse(raw)


def test_read_header_reads_only_the_first_segment() -> None:
    raw = MSG.encode() + b"\rZZZ|broken \\X4\\"
    assert read_header(raw).control_id == "MSG-7"


def test_a_bad_escape_loses_nothing_else() -> None:
    raw = b"MSH|^~\\&|A|B|C|D|1||ADT^A08|9|P|2.5\rNTE|1||a \\X4G\\ b \\F c\r"
    assert text(parse(raw).segment("NTE"), 3) == "a  b \\F c"
