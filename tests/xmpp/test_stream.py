"""The sans-IO client stream: negotiation, framing, errors and the transition table."""

from __future__ import annotations

import base64
from collections.abc import Callable
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.xmpp import ns
from carewire.xmpp.errors import LocalProtocolError, StreamCondition
from carewire.xmpp.parser import ParserLimits, parse_document
from carewire.xmpp.stream import (
    REMOTE_INPUTS,
    TRANSITIONS,
    AuthRequested,
    BindRequested,
    C2SStream,
    Framing,
    Input,
    PreAuthIq,
    SaslAborted,
    SaslResponse,
    StanzaReceived,
    StartTlsRequested,
    State,
    StreamConfig,
    StreamEnded,
    StreamStarted,
)

DOMAIN = "example.test"
HEADER = (
    f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    f"xmlns:stream='{ns.STREAM}' to='{DOMAIN}' version='1.0' xml:lang='en'>"
).encode()


def out(stream: C2SStream) -> str:
    return b"".join(stream.data_to_send()).decode()


def make(**kw: object) -> C2SStream:
    return C2SStream(StreamConfig(domain=DOMAIN, **kw))  # type: ignore[arg-type]


def to_state(target: State, **kw: object) -> C2SStream:
    """Drive a fresh stream along the happy path until it is in ``target``."""
    s = make(**kw)
    path: list[tuple[State, Callable[[C2SStream], object]]] = [
        (State.OPEN_PLAIN, lambda s: None),
        (State.AWAIT_STARTTLS, lambda s: s.receive_data(HEADER)),
        (State.TLS_HANDSHAKE, lambda s: s.receive_data(f"<starttls xmlns='{ns.TLS}'/>".encode())),
        (State.OPEN_TLS, lambda s: s.tls_established()),
        (State.AWAIT_AUTH, lambda s: s.receive_data(HEADER)),
        (
            State.SASL,
            lambda s: s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'/>".encode()),
        ),
        (State.OPEN_AUTHED, lambda s: s.sasl_success("alice")),
        (State.AWAIT_BIND, lambda s: s.receive_data(HEADER)),
        (
            State.BINDING,
            lambda s: s.receive_data(
                f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>".encode()
            ),
        ),
        (State.ESTABLISHED, lambda s: s.bind_success("b", f"alice@{DOMAIN}/r")),
    ]
    if target is State.CLOSED:
        s.close()
        return s
    for state, step in path:
        step(s)
        assert s.state is state
        if state is target:
            s.data_to_send()
            return s
    raise AssertionError(target)


def test_full_negotiation_over_tcp() -> None:
    s = make()
    events = s.receive_data(HEADER)
    assert events == [StreamStarted(lang="en")]
    text = out(s)
    assert "<stream:stream" in text and f"from='{DOMAIN}'" in text
    assert "<starttls" in text and "<required" in text
    assert "mechanism" not in text  # RFC 6120 §5.3.1: nothing but STARTTLS before TLS
    assert s.receive_data(f"<starttls xmlns='{ns.TLS}'/>".encode()) == [StartTlsRequested()]
    assert "<proceed" in out(s)
    s.tls_established()
    s.receive_data(HEADER)
    text = out(s)
    assert "<mechanism>SCRAM-SHA-256</mechanism>" in text and "<mechanism>PLAIN</mechanism>" in text
    first_id = s.stream_id
    cred = base64.b64encode(b"\0alice\0pw").decode()
    (ev,) = s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{cred}</auth>".encode())
    assert ev == AuthRequested(mechanism="PLAIN", initial_response=b"\0alice\0pw")
    s.sasl_success("alice")
    assert "<success" in out(s)
    s.receive_data(HEADER)
    assert s.stream_id != first_id  # RFC 6120 §4.7.3: a new id after restart
    text = out(s)
    assert f'<bind xmlns="{ns.BIND}"' in text
    (bind,) = s.receive_data(
        f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'>"
        f"<resource>phone</resource></bind></iq>".encode()
    )
    assert bind == BindRequested(iq_id="b1", resource="phone")
    s.bind_success("b1", f"alice@{DOMAIN}/phone")
    assert f"<jid>alice@{DOMAIN}/phone</jid>" in out(s)
    (msg,) = s.receive_data(b"<message to='bob@example.test'><body>hi</body></message>")
    assert isinstance(msg, StanzaReceived)
    assert msg.element.tag == f"{{{ns.CLIENT}}}message"
    assert s.receive_data(b"</stream:stream>") == [StreamEnded()]
    assert out(s).endswith("</stream:stream>")
    assert s.is_closed


def test_sasl_challenge_response_abort_and_failure() -> None:
    s = to_state(State.AWAIT_AUTH)
    (ev,) = s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-1'>=</auth>".encode())
    assert ev == AuthRequested(mechanism="SCRAM-SHA-1", initial_response=b"")
    s.sasl_challenge(b"r=abc")
    assert base64.b64encode(b"r=abc").decode() in out(s)
    (ev,) = s.receive_data(
        f"<response xmlns='{ns.SASL}'>{base64.b64encode(b'x').decode()}</response>".encode()
    )
    assert ev == SaslResponse(b"x")
    s.sasl_failure("not-authorized", "wrong")
    assert "<not-authorized/>" in out(s)
    assert s.state is State.AWAIT_AUTH
    s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-1'/>".encode())
    assert s.receive_data(f"<abort xmlns='{ns.SASL}'/>".encode()) == [SaslAborted()]
    assert "<aborted/>" in out(s)
    assert s.state is State.AWAIT_AUTH


def test_auth_before_tls_is_refused_with_encryption_required() -> None:
    s = to_state(State.AWAIT_STARTTLS)
    assert (
        s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGEAYg==</auth>".encode()) == []
    )
    assert "<encryption-required/>" in out(s)
    assert s.state is State.AWAIT_STARTTLS


def test_unknown_mechanism_and_bad_base64() -> None:
    s = to_state(State.AWAIT_AUTH)
    assert s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='X-FOO'/>".encode()) == []
    assert "<invalid-mechanism/>" in out(s)
    assert (
        s.receive_data(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>!!notbase64</auth>".encode())
        == []
    )
    assert "<incorrect-encoding/>" in out(s)
    assert s.state is State.AWAIT_AUTH


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<<garbage", StreamCondition.NOT_WELL_FORMED),
        (
            b"<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]><foo/>",
            StreamCondition.RESTRICTED_XML,
        ),
        (
            HEADER.replace(f"to='{DOMAIN}'".encode(), b"to='other.example'"),
            StreamCondition.HOST_UNKNOWN,
        ),
        (HEADER.replace(b"version='1.0'", b"version='0.9'"), StreamCondition.UNSUPPORTED_VERSION),
        (b"<stream xmlns='jabber:client' version='1.0'>", StreamCondition.INVALID_NAMESPACE),
    ],
)
def test_bad_stream_starts(data: bytes, condition: StreamCondition) -> None:
    s = make()
    (ev,) = s.receive_data(data)
    assert ev == StreamEnded(condition=condition, text=ev.text)  # type: ignore[union-attr]
    text = out(s)
    # RFC 6120 §4.9.1.2: the error follows our own stream header.
    assert text.startswith("<?xml") and f"<{condition.value}" in text
    assert text.endswith("</stream:stream>")
    assert s.is_closed and s.receive_data(HEADER) == []


def test_oversized_stanza_is_a_policy_violation() -> None:
    s = to_state(State.ESTABLISHED, limits=ParserLimits(max_stanza_bytes=10_000))
    (ev,) = s.receive_data(b"<message><body>" + b"a" * 20_000 + b"</body></message>")
    assert isinstance(ev, StreamEnded) and ev.condition is StreamCondition.POLICY_VIOLATION
    assert "<policy-violation" in out(s)


def test_stanza_before_auth_is_not_authorized() -> None:
    s = to_state(State.AWAIT_AUTH)
    (ev,) = s.receive_data(b"<message to='x@example.test'><body>hi</body></message>")
    assert isinstance(ev, StreamEnded) and ev.condition is StreamCondition.NOT_AUTHORIZED


def test_nothing_after_starttls_is_read_before_tls() -> None:
    s = to_state(State.AWAIT_STARTTLS)
    events = s.receive_data(
        f"<starttls xmlns='{ns.TLS}'/><message><body>injected</body></message>".encode()
    )
    assert events == [StartTlsRequested()]
    s.tls_established()  # the parser restarts: the injected plaintext is gone
    assert s.receive_data(HEADER) == [StreamStarted(lang="en")]


def test_preauth_iq_only_when_allowed() -> None:
    iq = b"<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>"
    s = to_state(State.AWAIT_AUTH, allow_preauth_iq=True)
    (ev,) = s.receive_data(iq)
    assert isinstance(ev, PreAuthIq)
    s2 = to_state(State.AWAIT_AUTH)
    (ev2,) = s2.receive_data(iq)
    assert isinstance(ev2, StreamEnded) and ev2.condition is StreamCondition.NOT_AUTHORIZED


def test_bind_failure_and_retry() -> None:
    s = to_state(State.BINDING)
    s.bind_failure("b", "bad-request", "modify")
    assert "<bad-request" in out(s)
    assert s.state is State.AWAIT_BIND


def test_unknown_top_level_element_after_bind() -> None:
    s = to_state(State.ESTABLISHED)
    (ev,) = s.receive_data(b"<enable xmlns='urn:xmpp:sm:3'/>")
    assert isinstance(ev, StreamEnded) and ev.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


def test_local_misuse_raises_and_closes() -> None:
    s = to_state(State.AWAIT_AUTH)
    with pytest.raises(LocalProtocolError):
        s.bind_success("x", "a@b/c")
    assert s.is_closed


def test_websocket_framing() -> None:
    s = make(framing=Framing.WEBSOCKET, is_tls_active=True)
    (ev,) = s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    assert ev == StreamStarted(lang="en")
    msgs = [m.decode() for m in s.data_to_send()]
    assert msgs[0].startswith("<open") and ns.FRAMING in msgs[0]
    features = parse_document(msgs[1])
    assert features.tag == f"{{{ns.STREAM}}}features"
    s.receive_message(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGEAYg==</auth>")
    s.sasl_success("a")
    s.data_to_send()
    s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    s.data_to_send()
    (bind,) = s.receive_message(
        f"<iq xmlns='jabber:client' type='set' id='1'><bind xmlns='{ns.BIND}'/></iq>"
    )
    assert bind == BindRequested(iq_id="1", resource=None)
    s.bind_success("1", f"a@{DOMAIN}/x")
    (reply,) = s.data_to_send()
    assert parse_document(reply).tag == f"{{{ns.CLIENT}}}iq"  # namespace-complete message
    assert s.receive_message(f"<close xmlns='{ns.FRAMING}'/>") == [StreamEnded()]
    assert s.data_to_send() == [f'<close xmlns="{ns.FRAMING}"/>'.encode()] or s.is_closed


def test_websocket_error_is_framed() -> None:
    s = make(framing=Framing.WEBSOCKET, is_tls_active=True)
    (ev,) = s.receive_message("<a><b></a>")
    assert isinstance(ev, StreamEnded)
    msgs = [m.decode() for m in s.data_to_send()]
    err = parse_document(msgs[0])
    assert err.tag == f"{{{ns.STREAM}}}error"
    assert parse_document(msgs[1]).tag == f"{{{ns.FRAMING}}}close"


# -- the table, exhaustively ------------------------------------------------------

REMOTE_BYTES: dict[Input, bytes] = {
    Input.OPEN: HEADER,
    Input.STARTTLS: f"<starttls xmlns='{ns.TLS}'/>".encode(),
    Input.AUTH: f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'/>".encode(),
    Input.RESPONSE: f"<response xmlns='{ns.SASL}'>=</response>".encode(),
    Input.ABORT: f"<abort xmlns='{ns.SASL}'/>".encode(),
    Input.BIND: f"<iq type='set' id='q'><bind xmlns='{ns.BIND}'/></iq>".encode(),
    Input.STANZA: b"<message to='x@example.test'/>",
    Input.PREAUTH_IQ: b"<iq type='get' id='r'><query xmlns='jabber:iq:register'/></iq>",
    Input.OTHER: b"<foo xmlns='urn:example:foo'/>",
    Input.CLOSE: b"</stream:stream>",
}
LOCAL_CALLS: dict[Input, Callable[[C2SStream], None]] = {
    Input.TLS_DONE: lambda s: s.tls_established(),
    Input.CHALLENGE: lambda s: s.sasl_challenge(b"c"),
    Input.SUCCESS: lambda s: s.sasl_success("alice"),
    Input.SUCCESS2: lambda s: s.sasl2_success("alice", Element("x"), is_bound=False),
    Input.FAILURE: lambda s: s.sasl_failure("not-authorized"),
    Input.BOUND: lambda s: s.bind_success("q", f"alice@{DOMAIN}/r"),
    Input.BIND_FAILED: lambda s: s.bind_failure("q", "conflict"),
}


def effective(state: State, inp: Input) -> Input:
    """How the machine classifies the sample bytes of ``inp`` in ``state``."""
    if inp in (Input.PREAUTH_IQ, Input.BIND) and state is State.AWAIT_AUTH:
        return Input.PREAUTH_IQ  # registration is allowed in these tests: every IQ is pre-auth
    if inp is Input.PREAUTH_IQ:
        return Input.STANZA
    if inp is Input.BIND and state not in (State.AWAIT_BIND, State.BINDING):
        return Input.STANZA
    return inp


@given(state=st.sampled_from(list(State)), inp=st.sampled_from(list(Input)))
def test_every_state_input_pair(state: State, inp: Input) -> None:
    s = to_state(state, allow_preauth_iq=True)
    if inp not in REMOTE_INPUTS:
        allowed = TRANSITIONS.get((state, inp))
        if allowed is None:
            with pytest.raises(LocalProtocolError):
                LOCAL_CALLS[inp](s)
            assert s.is_closed
        else:
            LOCAL_CALLS[inp](s)
            assert s.state is allowed
        return
    s.receive_data(REMOTE_BYTES[inp])
    if state is State.CLOSED or inp is Input.CLOSE:
        assert s.is_closed
        return
    opening = state in (State.OPEN_PLAIN, State.OPEN_TLS, State.OPEN_AUTHED)
    if opening and inp is not Input.OPEN:
        assert s.is_closed  # anything before the stream header
        return
    if inp is Input.OPEN and not opening:
        # Mid-stream, a second header starts with an XML declaration, which only
        # the very beginning of a stream may carry: the stream is failed.
        assert s.is_closed
        return
    allowed = TRANSITIONS.get((state, effective(state, inp)))
    if allowed is None:
        assert s.is_closed
        assert "<stream:error>" in out(s)
    else:
        assert s.state is allowed


def test_table_targets_are_states() -> None:
    for (state, inp), nxt in TRANSITIONS.items():
        assert isinstance(state, State) and isinstance(inp, Input) and isinstance(nxt, State)
        assert state is not State.CLOSED


def test_stanzas_before_a_parse_error_are_kept() -> None:
    s = to_state(State.ESTABLISHED)
    events = s.receive_data(b"<message to='b@example.test'><body>1</body></message><<bad")
    assert isinstance(events[0], StanzaReceived)
    assert (
        isinstance(events[1], StreamEnded)
        and events[1].condition is StreamCondition.NOT_WELL_FORMED
    )


def test_edge_cases_of_the_stream() -> None:
    s = to_state(State.ESTABLISHED)
    (ended,) = s.receive_message("<x xmlns='urn:example:x'/>")
    assert isinstance(ended, StreamEnded)
    assert ended.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE
    closed = to_state(State.CLOSED)
    closed.data_to_send()
    assert closed.receive_data(b"<message/>") == [] and closed.receive_message("<a/>") == []
    closed.send_element(Element("x"))  # dropped silently once closed
    closed.close(StreamCondition.CONFLICT)  # idempotent
    assert closed.data_to_send() == []
    bad_version = make()
    (ev,) = bad_version.receive_data(HEADER.replace(b"version='1.0'", b"version='x.y'"))
    assert isinstance(ev, StreamEnded) and ev.condition is StreamCondition.UNSUPPORTED_VERSION


def test_websocket_open_twice_and_bad_base64_response() -> None:
    s = make(framing=Framing.WEBSOCKET, is_tls_active=True)
    s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    (ev,) = s.receive_message(f"<open xmlns='{ns.FRAMING}' to='{DOMAIN}' version='1.0'/>")
    assert isinstance(ev, StreamEnded) and ev.condition is StreamCondition.INVALID_XML
    s = to_state(State.SASL)
    assert s.receive_data(f"<response xmlns='{ns.SASL}'>***</response>".encode()) == []
    assert "<incorrect-encoding/>" in out(s) and s.state is State.AWAIT_AUTH


def test_local_calls_in_the_wrong_state() -> None:
    s = to_state(State.AWAIT_BIND)
    with pytest.raises(LocalProtocolError):
        s.send_element(Element("x"))
    s = to_state(State.ESTABLISHED)
    with pytest.raises(LocalProtocolError):
        s.send_preauth(Element("x"))


def test_preauth_reply_and_close_with_error() -> None:
    s = to_state(State.AWAIT_AUTH, allow_preauth_iq=True)
    s.send_preauth(Element(f"{{{ns.CLIENT}}}iq", {"type": "result", "id": "r"}))
    assert '<iq type="result" id="r"' in out(s) or '<iq id="r" type="result"' in out(s)
    s.close(StreamCondition.SYSTEM_SHUTDOWN, "bye")
    text = out(s)
    assert "<system-shutdown" in text and "bye" in text and s.is_closed
