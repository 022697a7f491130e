"""Nonzas in the sans-IO stream: XEP-0198 stream management and XEP-0352 client state."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.xmpp import ns
from carewire.xmpp.errors import LocalProtocolError, StreamCondition
from carewire.xmpp.parser import parse_document
from carewire.xmpp.stream import (
    CSI,
    MAX_SEQ,
    NONZA_STATES,
    NONZA_TAGS,
    SM,
    C2SStream,
    ClientStateChanged,
    Framing,
    Nonza,
    SmAckReceived,
    SmAckRequested,
    SmEnableRequested,
    SmResumeRequested,
    State,
    StreamConfig,
    StreamEnded,
    parse_seq,
)
from tests.xmpp.test_stream import DOMAIN, out, to_state

BOTH = frozenset({SM, CSI})
SAMPLES: dict[Nonza, bytes] = {
    Nonza.SM_ENABLE: f"<enable xmlns='{SM}' resume='true' max='60'/>".encode(),
    Nonza.SM_RESUME: f"<resume xmlns='{SM}' previd='abc' h='3'/>".encode(),
    Nonza.SM_REQUEST: f"<r xmlns='{SM}'/>".encode(),
    Nonza.SM_ACK: f"<a xmlns='{SM}' h='7'/>".encode(),
    Nonza.CSI_ACTIVE: f"<active xmlns='{CSI}'/>".encode(),
    Nonza.CSI_INACTIVE: f"<inactive xmlns='{CSI}'/>".encode(),
}
EVENTS = {
    Nonza.SM_ENABLE: SmEnableRequested(resume=True, max=60),
    Nonza.SM_RESUME: SmResumeRequested(previd="abc", h=3),
    Nonza.SM_REQUEST: SmAckRequested(),
    Nonza.SM_ACK: SmAckReceived(h=7),
    Nonza.CSI_ACTIVE: ClientStateChanged(is_active=True),
    Nonza.CSI_INACTIVE: ClientStateChanged(is_active=False),
}


def established(nonzas: frozenset[str] = BOTH) -> C2SStream:
    return to_state(State.ESTABLISHED, nonza_namespaces=nonzas)


def test_every_nonza_has_a_tag_a_sample_and_states() -> None:
    assert set(NONZA_TAGS.values()) == set(Nonza) == set(SAMPLES) == set(NONZA_STATES)


@given(state=st.sampled_from(list(State)), nonza=st.sampled_from(list(Nonza)))
def test_every_state_nonza_pair(state: State, nonza: Nonza) -> None:
    s = to_state(state, nonza_namespaces=BOTH)
    events = s.receive_data(SAMPLES[nonza])
    if state in NONZA_STATES[nonza]:
        assert events == [EVENTS[nonza]]
        assert s.state is state  # nonzas never change the state
    else:
        assert s.is_closed
        if state is not State.CLOSED:
            assert "<stream:error>" in out(s)


@pytest.mark.parametrize("nonza", list(Nonza))
def test_nonzas_of_features_not_advertised_are_unknown(nonza: Nonza) -> None:
    s = established(frozenset({CSI}) if nonza.value.startswith("sm") else frozenset({SM}))
    (ended,) = s.receive_data(SAMPLES[nonza])
    assert isinstance(ended, StreamEnded)
    assert ended.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


@pytest.mark.parametrize(
    ("xml", "event"),
    [
        (f"<enable xmlns='{SM}'/>", SmEnableRequested(resume=False, max=None)),
        (f"<enable xmlns='{SM}' resume='1' max='0'/>", SmEnableRequested(resume=True, max=None)),
        (
            f"<enable xmlns='{SM}' resume='yes' max='-5'/>",
            SmEnableRequested(resume=False, max=None),
        ),
        (f"<resume xmlns='{SM}'/>", SmResumeRequested(previd="", h=None)),
        (f"<resume xmlns='{SM}' previd='x' h='1e3'/>", SmResumeRequested(previd="x", h=None)),
        (f"<a xmlns='{SM}' h='4294967295'/>", SmAckReceived(h=MAX_SEQ - 1)),
        (f"<a xmlns='{SM}' h='4294967296'/>", SmAckReceived(h=None)),
        (f"<a xmlns='{SM}' h='٣'/>", SmAckReceived(h=None)),  # non-ASCII digits
        (f"<a xmlns='{SM}' h=''/>", SmAckReceived(h=None)),
    ],
)
def test_attribute_parsing(xml: str, event: object) -> None:
    s = to_state(State.AWAIT_BIND, nonza_namespaces=BOTH)
    if not isinstance(event, SmEnableRequested | SmResumeRequested):
        s = established()
    assert s.receive_data(xml.encode()) == [event]


def test_parse_seq() -> None:
    assert parse_seq("0") == 0 and parse_seq(None) is None and parse_seq("+1") is None


def test_nonzas_go_out_with_their_own_namespace() -> None:
    s = established()
    s.send_nonza(Element(f"{{{SM}}}a", {"h": "4"}))
    assert out(s) == f'<a xmlns="{SM}" h="4"/>'
    ws = C2SStream(StreamConfig(domain=DOMAIN, framing=Framing.WEBSOCKET, is_tls_active=True))
    with pytest.raises(LocalProtocolError):
        ws.send_nonza(Element(f"{{{SM}}}r"))  # not before authentication
    closed = established()
    closed.close()
    closed.data_to_send()
    closed.send_nonza(Element(f"{{{SM}}}r"))  # dropped once closed
    assert closed.data_to_send() == []


def test_resumed_binds_the_stream() -> None:
    s = to_state(State.AWAIT_BIND, nonza_namespaces=BOTH)
    s.sm_resumed("id'&<", MAX_SEQ + 5)
    assert s.state is State.ESTABLISHED
    resumed = parse_document(out(s))
    assert resumed.tag == f"{{{SM}}}resumed"
    assert (resumed.get("previd"), resumed.get("h")) == ("id'&<", "5")
    again = established()
    with pytest.raises(LocalProtocolError):
        again.sm_resumed("x", 0)  # only instead of binding
    assert again.is_closed


def test_how_the_stream_ended_is_recorded() -> None:
    s = established()
    assert not s.is_closed_by_peer and s.end_condition is None
    s.receive_data(b"</stream:stream>")
    assert s.is_closed_by_peer and s.end_condition is None
    e = established()
    app = Element(f"{{{SM}}}handled-count-too-high", {"h": "3", "send-count": "1"})
    e.close(StreamCondition.UNDEFINED_CONDITION, "too many", app_condition=app)
    text = out(e)
    assert f'<handled-count-too-high xmlns="{SM}" h="3" send-count="1"/>' in text
    assert "<undefined-condition" in text and text.endswith("</stream:stream>")
    assert e.end_condition is StreamCondition.UNDEFINED_CONDITION and not e.is_closed_by_peer


def test_websocket_nonzas() -> None:
    s = C2SStream(
        StreamConfig(
            domain=DOMAIN, framing=Framing.WEBSOCKET, is_tls_active=True, nonza_namespaces=BOTH
        )
    )
    s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    s.receive_message(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGEAYg==</auth>")
    s.sasl_success("a")
    s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    s.data_to_send()
    assert s.receive_message(f"<resume xmlns='{SM}' previd='p' h='0'/>") == [
        SmResumeRequested(previd="p", h=0)
    ]
    s.sm_resumed("p", 0)
    (msg,) = s.data_to_send()
    assert parse_document(msg).tag == f"{{{SM}}}resumed"
    assert s.receive_message(f"<inactive xmlns='{CSI}'/>") == [ClientStateChanged(is_active=False)]
