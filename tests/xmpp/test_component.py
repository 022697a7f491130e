"""The sans-IO component stream (XEP-0114): handshake, namespaces, 'from' checks, errors, table."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.xmpp import ns
from carewire.xmpp.component import (
    REMOTE_INPUTS,
    REMOTE_REFUSALS,
    TRANSITIONS,
    ComponentOpened,
    ComponentStream,
    ComponentStreamConfig,
    HandshakeReceived,
    Input,
    StanzaReceived,
    State,
    StreamEnded,
    handshake_digest,
    is_valid_handshake,
)
from carewire.xmpp.errors import LocalProtocolError, StreamCondition
from carewire.xmpp.parser import ParserLimits, parse_document

GW = "gw.example.test"
SECRET = "a-shared-secret-of-some-length"
HEADER = (
    f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='{ns.STREAM}' to='{GW}'>"
).encode()


def make(**kw: object) -> ComponentStream:
    return ComponentStream(ComponentStreamConfig(domains=frozenset({GW}), **kw))  # type: ignore[arg-type]


def out(stream: ComponentStream) -> str:
    return b"".join(stream.data_to_send()).decode()


def handshake(stream: ComponentStream, secret: str = SECRET) -> bytes:
    return f"<handshake>{handshake_digest(stream.stream_id, secret)}</handshake>".encode()


def established() -> ComponentStream:
    s = make()
    s.receive_data(HEADER)
    s.receive_data(handshake(s))
    s.accept()
    out(s)
    return s


def error_of(text: str) -> str:
    """The condition of the stream error in ``text``."""
    m = re.search(r"<stream:error><([a-z-]+) xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"", text)
    assert m is not None, text
    return m.group(1)


# -- handshake ---------------------------------------------------------------------------


def test_digest_is_the_hex_sha1_of_stream_id_and_secret() -> None:
    # XEP-0114 §3's example: stream id 3BF96D32, secret "sunny".
    expected = hashlib.sha1(b"3BF96D32sunny").hexdigest()
    assert handshake_digest("3BF96D32", "sunny") == expected
    assert is_valid_handshake("3BF96D32", "sunny", expected)
    assert is_valid_handshake("3BF96D32", "sunny", expected.upper() + "\n")
    assert not is_valid_handshake("3BF96D32", "sunnY", expected)
    assert not is_valid_handshake("3BF96D32", "sunny", "")
    assert not is_valid_handshake("3BF96D32", "sunny", "é" * 40)


def test_header_handshake_and_accept() -> None:
    s = make()
    events = s.receive_data(HEADER)
    assert events == [ComponentOpened(GW)]
    header = out(s)
    assert f"from='{GW}'" in header and f"id='{s.stream_id}'" in header
    assert "xmlns='jabber:component:accept'" in header
    assert "version" not in header.replace("<?xml version='1.0'?>", "")  # no stream features
    assert len(s.stream_id) == 32
    (event,) = s.receive_data(handshake(s))
    assert isinstance(event, HandshakeReceived)
    assert is_valid_handshake(s.stream_id, SECRET, event.digest)
    assert s.state is State.VERIFYING
    s.accept()
    assert out(s) == "<handshake/>"
    assert s.is_established


def test_each_stream_has_its_own_id() -> None:
    a, b = make(), make()
    a.receive_data(HEADER)
    b.receive_data(HEADER)
    assert a.stream_id != b.stream_id


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (HEADER.replace(GW.encode(), b"other.example.test"), "host-unknown"),
        (HEADER.replace(f" to='{GW}'".encode(), b""), "improper-addressing"),
        (b"<stream xmlns='jabber:component:accept' to='gw.example.test'>", "invalid-namespace"),
    ],
)
def test_refused_headers(header: bytes, condition: str) -> None:
    s = make()
    (event,) = s.receive_data(header)
    assert isinstance(event, StreamEnded) and event.condition == condition
    text = out(s)
    assert text.startswith("<?xml") and error_of(text) == condition
    assert "from=" not in text.split(">", 2)[1]  # we do not speak for an unknown domain
    assert s.is_closed and s.end_condition == condition


def test_the_domain_is_compared_case_insensitively() -> None:
    s = make()
    assert s.receive_data(HEADER.replace(b"gw.example", b"GW.Example")) == [ComponentOpened(GW)]


@pytest.mark.parametrize(
    "before",
    [
        b"<message to='a@example.test'/>",  # a stanza before the handshake
        b"<presence/>",
        b"<iq type='get' id='1'/>",
        b"<foo xmlns='urn:x'/>",
    ],
)
def test_nothing_but_the_handshake_before_it(before: bytes) -> None:
    s = make()
    s.receive_data(HEADER)
    out(s)
    (event,) = s.receive_data(before)
    assert isinstance(event, StreamEnded) and event.condition is StreamCondition.NOT_AUTHORIZED
    assert error_of(out(s)) == "not-authorized"


def test_a_second_handshake_is_a_policy_violation() -> None:
    s = established()
    (event,) = s.receive_data(handshake(s))
    assert isinstance(event, StreamEnded) and event.condition is StreamCondition.POLICY_VIOLATION


def test_stanzas_pipelined_behind_the_handshake_are_kept_in_order() -> None:
    s = make()
    s.receive_data(HEADER)
    msg = f"<message from='bot@{GW}' to='a@example.test'><body>hi</body></message>"
    events = s.receive_data(handshake(s) + msg.encode())
    assert isinstance(events[0], HandshakeReceived) and isinstance(events[1], StanzaReceived)
    assert s.state is State.VERIFYING
    with pytest.raises(LocalProtocolError):
        s.send_element(Element(f"{{{ns.CLIENT}}}message"))  # nothing goes out before accepting


# -- stanzas ------------------------------------------------------------------------------


def test_stanzas_arrive_in_jabber_client() -> None:
    s = established()
    text = (
        f"<message from='bot@{GW}/x' to='a@example.test' type='chat'><body>hi</body>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    (event,) = s.receive_data(text.encode())
    assert isinstance(event, StanzaReceived)
    el = event.element
    assert el.tag == f"{{{ns.CLIENT}}}message"
    assert el[0].tag == f"{{{ns.CLIENT}}}body" and el[0].text == "hi"
    assert el[1].tag == "{http://jabber.org/protocol/chatstates}active"


def test_a_missing_from_is_the_component_domain() -> None:
    s = established()
    (event,) = s.receive_data(b"<presence to='a@example.test'/>")
    assert isinstance(event, StanzaReceived) and event.element.get("from") == GW


@pytest.mark.parametrize(
    "sender", ["a@example.test", "example.test", "gw.example.test.evil", "x@sub.gw.example.test"]
)
def test_from_outside_the_domain_is_invalid_from(sender: str) -> None:
    s = established()
    (event,) = s.receive_data(f"<message from='{sender}' to='a@example.test'/>".encode())
    assert isinstance(event, StreamEnded) and event.condition is StreamCondition.INVALID_FROM
    assert error_of(out(s)) == "invalid-from"
    assert s.receive_data(b"<presence/>") == []  # nothing is read after the end


def test_a_malformed_from_is_invalid_from() -> None:
    s = established()
    (event,) = s.receive_data(b"<message from='@@' to='a@example.test'/>")
    assert isinstance(event, StreamEnded) and event.condition is StreamCondition.INVALID_FROM


def test_stanzas_in_another_namespace_are_refused() -> None:
    s = established()
    (event,) = s.receive_data(b"<message xmlns='jabber:client' to='a@example.test'/>")
    assert isinstance(event, StreamEnded)
    assert event.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


def test_sent_stanzas_inherit_the_component_namespace() -> None:
    s = established()
    msg = Element(f"{{{ns.CLIENT}}}message", {"to": f"bot@{GW}", "from": "a@example.test/x"})
    SubElement(msg, f"{{{ns.CLIENT}}}body").text = "hello"
    SubElement(msg, "{urn:xmpp:receipts}request")
    s.send_element(msg)
    text = out(s)
    assert text.startswith('<message to="bot@gw.example.test"')
    assert "<body>hello</body>" in text and '<request xmlns="urn:xmpp:receipts"/>' in text
    wrapped = parse_document(f"<w xmlns='{ns.COMPONENT}'>{text}</w>")
    assert wrapped[0].tag == f"{{{ns.COMPONENT}}}message"


# -- bad input and the end -----------------------------------------------------------------


def test_malformed_xml_is_not_well_formed() -> None:
    s = established()
    events = s.receive_data(f"<presence from='{GW}' to='a@example.test'/><<".encode())
    assert isinstance(events[0], StanzaReceived)  # what came before the error still counts
    assert isinstance(events[1], StreamEnded)
    assert events[1].condition is StreamCondition.NOT_WELL_FORMED
    assert error_of(out(s)) == "not-well-formed"


def test_an_oversized_stanza_is_a_policy_violation() -> None:
    s = ComponentStream(
        ComponentStreamConfig(domains=frozenset({GW}), limits=ParserLimits(max_stanza_bytes=10_000))
    )
    s.receive_data(HEADER)
    s.receive_data(handshake(s))
    s.accept()
    out(s)
    big = f"<message to='a@example.test'><body>{'x' * 20_000}</body></message>".encode()
    events = s.receive_data(big)
    assert isinstance(events[-1], StreamEnded)
    assert events[-1].condition is StreamCondition.POLICY_VIOLATION


def test_restricted_xml_is_refused_before_the_handshake() -> None:
    s = make()
    s.receive_data(HEADER)
    (event,) = s.receive_data(b"<!-- hello -->")
    assert isinstance(event, StreamEnded) and event.condition is StreamCondition.RESTRICTED_XML


def test_the_component_closes_the_stream() -> None:
    s = established()
    assert s.receive_data(b"</stream:stream>") == [StreamEnded()]
    assert out(s) == "</stream:stream>"
    assert s.is_closed and s.is_closed_by_peer and s.end_condition is None


def test_we_close_the_stream() -> None:
    s = established()
    s.close()
    assert out(s) == "</stream:stream>"
    s.close()
    s.close(StreamCondition.CONFLICT)  # closing twice writes nothing more
    assert out(s) == ""
    s.send_element(Element(f"{{{ns.CLIENT}}}message"))  # quietly dropped after the end
    assert out(s) == ""


def test_closing_with_an_error_before_any_header_sends_ours_first() -> None:
    s = make()
    s.close(StreamCondition.SYSTEM_SHUTDOWN, "bye")
    text = out(s)
    assert text.startswith("<?xml") and error_of(text) == "system-shutdown"


def test_accepting_without_a_handshake_is_our_fault() -> None:
    s = make()
    s.receive_data(HEADER)
    with pytest.raises(LocalProtocolError):
        s.accept()
    assert s.is_closed


# -- the transition table over every (state, input) ------------------------------------------

REMOTE_BYTES: dict[Input, Callable[[ComponentStream], bytes]] = {
    Input.OPEN: lambda s: HEADER,
    Input.HANDSHAKE: lambda s: handshake(s),
    Input.STANZA: lambda s: f"<message from='{GW}' to='a@example.test'/>".encode(),
    Input.OTHER: lambda s: b"<foo xmlns='urn:x'/>",
}


def to_state(target: State) -> ComponentStream:
    s = make()
    steps: list[tuple[State, Callable[[ComponentStream], object]]] = [
        (State.AWAIT_OPEN, lambda s: None),
        (State.AWAIT_HANDSHAKE, lambda s: s.receive_data(HEADER)),
        (State.VERIFYING, lambda s: s.receive_data(handshake(s))),
        (State.ESTABLISHED, lambda s: s.accept()),
    ]
    if target is State.CLOSED:
        s.close()
        return s
    for state, step in steps:
        step(s)
        if state is target:
            break
    out(s)
    assert s.state is target
    return s


@given(state=st.sampled_from(list(State)), inp=st.sampled_from(list(Input)))
def test_every_state_input_pair(state: State, inp: Input) -> None:
    s = to_state(state)
    if inp not in REMOTE_INPUTS:
        allowed = TRANSITIONS.get((state, inp))
        if allowed is None:
            with pytest.raises(LocalProtocolError):
                s.accept()
            assert s.is_closed
        else:
            s.accept()
            assert s.state is allowed
        return
    data = REMOTE_BYTES[inp](s)
    if inp is Input.OPEN and state is not State.AWAIT_OPEN:
        data = data.replace(b"<stream:stream", b"<stream:stream xmlns:stream='x'")
    events = s.receive_data(data)
    if state is State.CLOSED:
        assert events == [] and s.is_closed
        return
    if state is State.AWAIT_OPEN and inp is not Input.OPEN:
        assert s.is_closed  # the parser needs the stream root first
        return
    allowed = TRANSITIONS.get((state, inp))
    if allowed is None:
        assert s.is_closed
        (event,) = events
        assert isinstance(event, StreamEnded)
        if inp is not Input.OPEN:
            assert event.condition is REMOTE_REFUSALS.get(
                (state, inp), StreamCondition.NOT_AUTHORIZED
            )
    else:
        assert s.state is allowed


def test_table_targets_are_states() -> None:
    for (state, inp), nxt in TRANSITIONS.items():
        assert isinstance(state, State) and isinstance(inp, Input) and isinstance(nxt, State)
        assert state is not State.CLOSED
