"""Both sans-IO server streams (RFC 6120 §4, XEP-0178/0220/0288), talking to each other in memory.

An initiating :class:`S2SOutStream` (a.test) and a receiving :class:`S2SInStream`
(b.test) exchange their bytes through :func:`pump`; the tests make the
decisions a driver would (TLS done, SASL EXTERNAL accepted, dialback verified)
and check each table's transitions and refusals.
"""

from __future__ import annotations

import base64
from typing import TypeVar
from xml.etree.ElementTree import Element

import pytest

from carewire.xmpp import dialback, ns
from carewire.xmpp import s2s as ins
from carewire.xmpp import s2s_out as outs
from carewire.xmpp.errors import LocalProtocolError, StreamCondition
from carewire.xmpp.parser import ParserLimits
from carewire.xmpp.s2s_common import (
    BidiRequested,
    DialbackReceived,
    ExternalAuthRequested,
    FeaturesReceived,
    S2SEvent,
    SaslOutcome,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    StreamStarted,
    TlsProceed,
)

E = TypeVar("E")
LIMITS = ParserLimits(max_stanza_bytes=4096)
SECRET = b"s" * 32
HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
    "from='{frm}' to='{to}' version='1.0'>"
)


def new_pair(
    local: str = "a.test", remote: str = "b.test"
) -> tuple[outs.S2SOutStream, ins.S2SInStream]:
    out = outs.S2SOutStream(local=local, remote=remote, is_tls_active=False, limits=LIMITS)
    inn = ins.S2SInStream(
        domains_served=frozenset({"b.test", "chat.b.test"}), is_tls_active=False, limits=LIMITS
    )
    return out, inn


def pump(out: outs.S2SOutStream, inn: ins.S2SInStream) -> tuple[list[S2SEvent], list[S2SEvent]]:
    """Carry bytes both ways until neither side has more; (events of out, events of in)."""
    out_events: list[S2SEvent] = []
    in_events: list[S2SEvent] = []
    for _ in range(20):
        to_in = b"".join(out.data_to_send())
        if to_in:
            in_events += inn.receive_data(to_in)
        to_out = b"".join(inn.data_to_send())
        if to_out:
            out_events += out.receive_data(to_out)
        if not to_in and not to_out:
            return out_events, in_events
    raise AssertionError("the streams never went quiet")


def of(events: list[S2SEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def state(stream: ins.S2SInStream | outs.S2SOutStream) -> str:
    """The state now (mypy would keep an earlier assertion's narrowing)."""
    return stream.state.value


def to_auth(out: outs.S2SOutStream, inn: ins.S2SInStream) -> FeaturesReceived:
    """Header, STARTTLS, TLS (pretended), new header: both sides await authentication."""
    out.start()
    oev, iev = pump(out, inn)
    assert of(iev, StreamStarted) == [StreamStarted(out.local, out.remote, inn.stream_id)]
    assert inn.state is ins.State.AWAIT_STARTTLS
    (feat,) = of(oev, FeaturesReceived)
    assert isinstance(feat, FeaturesReceived) and feat.has_starttls and not feat.mechanisms
    out.starttls()
    oev, iev = pump(out, inn)
    assert of(iev, StartTlsRequested)
    assert of(oev, TlsProceed)
    assert state(out) == state(inn) == "tls-handshake"
    inn.tls_established()
    out.tls_established()
    oev, iev = pump(out, inn)
    assert state(inn) == "await-auth" and not of(oev, FeaturesReceived)
    inn.send_auth_features(external=True, dialback=True)
    oev, _ = pump(out, inn)
    (feat,) = of(oev, FeaturesReceived)
    assert isinstance(feat, FeaturesReceived)
    return feat


def message(frm: str = "alice@a.test", to: str = "bob@b.test") -> Element:
    el = Element(f"{{{ns.CLIENT}}}message", {"from": frm, "to": to, "type": "chat"})
    body = Element(f"{{{ns.CLIENT}}}body")
    body.text = "hello"
    el.append(body)
    return el


def test_certificate_authentication_and_a_bidirectional_stream() -> None:
    out, inn = new_pair()
    feat = to_auth(out, inn)
    assert feat.mechanisms == ("EXTERNAL",) and feat.has_dialback and feat.has_bidi
    out.request_bidi()
    out.authenticate_external()
    oev, iev = pump(out, inn)
    assert of(iev, BidiRequested) and of(iev, ExternalAuthRequested) == [
        ExternalAuthRequested("a.test")
    ]
    assert inn.state is ins.State.SASL
    inn.sasl_success("a.test")
    oev, iev = pump(out, inn)
    assert of(oev, SaslOutcome) == [SaslOutcome(is_success=True)]
    assert state(inn) == "established" and inn.domains == {"a.test"}
    assert of(oev, FeaturesReceived) and state(out) == "negotiating"
    out.established()
    assert state(out) == "established"
    out.send_element(message())
    _, iev = pump(out, inn)
    (got,) = of(iev, StanzaReceived)
    assert isinstance(got, StanzaReceived)
    assert got.element.tag == f"{{{ns.CLIENT}}}message"  # back in the kernel's namespace
    assert got.element.find(f"{{{ns.CLIENT}}}body") is not None
    inn.send_element(message("bob@b.test", "alice@a.test"))  # the other way (XEP-0288)
    oev, _ = pump(out, inn)
    assert [e.element.get("from") for e in of(oev, StanzaReceived)] == ["bob@b.test"]


def test_dialback_authentication() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    key = dialback.dialback_key(
        SECRET, receiving="b.test", originating="a.test", stream_id=out.peer_stream_id
    )
    out.authenticate_dialback(key)
    _, iev = pump(out, inn)
    (db,) = of(iev, DialbackReceived)
    assert isinstance(db, DialbackReceived)
    request = db.dialback
    assert (request.from_, request.to, request.key) == ("a.test", "b.test", key)
    # b.test asks a.test's authoritative server: the key was made for b.test's stream id.
    assert dialback.is_valid_key(
        SECRET, request.key, receiving="b.test", originating="a.test", stream_id=inn.stream_id
    )
    inn.dialback_valid(request)
    oev, _ = pump(out, inn)
    (answer,) = of(oev, DialbackReceived)
    assert isinstance(answer, DialbackReceived) and answer.dialback.type == "valid"
    assert out.state is outs.State.ESTABLISHED and out.is_authenticated
    out.send_element(message())
    _, iev = pump(out, inn)
    assert of(iev, StanzaReceived)


def test_an_invalid_dialback_answer_does_not_establish_the_stream() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    out.authenticate_dialback("00")
    _, iev = pump(out, inn)
    (db,) = of(iev, DialbackReceived)
    inn.send_nonza(dialback.answer(db.dialback, is_valid=False))
    oev, _ = pump(out, inn)
    assert of(oev, DialbackReceived)
    assert out.state is outs.State.AWAIT_DIALBACK and not out.is_authenticated
    with pytest.raises(LocalProtocolError):
        out.send_element(message())


def test_sasl_failure_lets_the_peer_fall_back_to_dialback() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    out.authenticate_external()
    pump(out, inn)
    inn.sasl_failure()
    oev, _ = pump(out, inn)
    assert of(oev, SaslOutcome) == [SaslOutcome(is_success=False, condition="not-authorized")]
    assert inn.state is ins.State.AWAIT_AUTH and out.state is outs.State.NEGOTIATING
    out.authenticate_dialback("k")
    _, iev = pump(out, inn)
    assert of(iev, DialbackReceived)


# -- the receiving side's refusals -------------------------------------------------


def opened(tls: bool = True, *, frm: str = "a.test") -> ins.S2SInStream:
    inn = ins.S2SInStream(domains_served=frozenset({"b.test"}), is_tls_active=tls, limits=LIMITS)
    events = inn.receive_data(HEADER.format(frm=frm, to="b.test").encode())
    assert events and isinstance(events[0], StreamStarted)
    if tls:
        inn.send_auth_features(external=True, dialback=False)
    inn.data_to_send()
    return inn


def ended(events: list[S2SEvent]) -> StreamEnded:
    assert events and isinstance(events[-1], StreamEnded), events
    return events[-1]


@pytest.mark.parametrize(
    ("tls", "condition"),
    [(False, StreamCondition.POLICY_VIOLATION), (True, StreamCondition.NOT_AUTHORIZED)],
    ids=["before TLS", "before authentication"],
)
def test_a_stanza_before_authentication_ends_the_stream(
    tls: bool, condition: StreamCondition
) -> None:
    inn = opened(tls)
    events = inn.receive_data(b"<message from='x@a.test' to='y@b.test'><body>hi</body></message>")
    assert ended(events).condition is condition
    assert not of(events, StanzaReceived)
    wire = b"".join(inn.data_to_send())
    assert condition.value.encode() in wire and wire.endswith(b"</stream:stream>")
    assert inn.is_closed and inn.receive_data(b"<message/>") == []


def test_a_domain_we_do_not_serve_is_host_unknown() -> None:
    inn = ins.S2SInStream(domains_served=frozenset({"b.test"}), is_tls_active=True, limits=LIMITS)
    events = inn.receive_data(HEADER.format(frm="a.test", to="other.test").encode())
    assert ended(events).condition is StreamCondition.HOST_UNKNOWN


def test_a_header_without_version_is_refused() -> None:
    inn = ins.S2SInStream(domains_served=frozenset({"b.test"}), is_tls_active=True, limits=LIMITS)
    header = HEADER.format(frm="a.test", to="b.test").replace(
        " to='b.test' version='1.0'", " to='b.test'"
    )
    assert ended(inn.receive_data(header.encode())).condition is (
        StreamCondition.UNSUPPORTED_VERSION
    )


def test_dialback_where_it_is_not_offered_is_not_authorized() -> None:
    inn = opened()  # features: EXTERNAL only
    events = inn.receive_data(b"<db:result from='a.test' to='b.test'>abc</db:result>")
    assert ended(events).condition is StreamCondition.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("auth", "condition"),
    [
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
            b"invalid-mechanism",
        ),
        (
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>!!</auth>",
            b"incorrect-encoding",
        ),
    ],
)
def test_bad_sasl_is_a_sasl_failure_not_the_end(auth: bytes, condition: bytes) -> None:
    inn = opened()
    assert inn.receive_data(auth) == []
    assert condition in b"".join(inn.data_to_send())
    assert inn.state is ins.State.AWAIT_AUTH


def test_external_with_an_authzid() -> None:
    inn = opened()
    text = base64.b64encode(b"A.test").decode()
    auth = f"<auth xmlns='{ns.SASL}' mechanism='EXTERNAL'>{text}</auth>"
    events = inn.receive_data(auth.encode())
    assert events == [ExternalAuthRequested("a.test")]


def test_an_oversized_stanza_is_a_policy_violation() -> None:
    inn = opened()
    big = b"<message to='y@b.test'><body>" + b"x" * 5000 + b"</body></message>"
    assert ended(inn.receive_data(big)).condition is StreamCondition.POLICY_VIOLATION


def test_a_stream_error_from_the_peer_ends_the_stream_quietly() -> None:
    inn = opened()
    events = inn.receive_data(
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error>"
    )
    end = ended(events)
    assert end.is_by_peer and end.condition is StreamCondition.SYSTEM_SHUTDOWN
    assert b"".join(inn.data_to_send()) == b"</stream:stream>"  # no error of ours


def test_an_unknown_element_on_an_established_stream() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    out.authenticate_external()
    pump(out, inn)
    inn.sasl_success("a.test")
    pump(out, inn)
    events = inn.receive_data(b"<foo xmlns='urn:example'/>")
    assert ended(events).condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


@pytest.mark.parametrize("state", [s for s in ins.State if s is not ins.State.CLOSED])
@pytest.mark.parametrize("inp", sorted(ins.LOCAL_INPUTS))
def test_receiving_table_local_inputs_outside_it_raise(state: ins.State, inp: ins.Input) -> None:
    if (state, inp) in ins.TRANSITIONS:
        return
    inn = ins.S2SInStream(domains_served=frozenset({"b.test"}), is_tls_active=True, limits=LIMITS)
    inn.state = state
    with pytest.raises(LocalProtocolError):
        inn._step(inp)
    assert inn.state is ins.State.CLOSED


def test_receiving_table_remote_inputs_outside_it_are_refused() -> None:
    inn = ins.S2SInStream(domains_served=frozenset({"b.test"}), is_tls_active=True, limits=LIMITS)
    for state in ins.State:
        for inp in ins.REMOTE_INPUTS:
            inn.state = state
            assert inn._step(inp) is ((state, inp) in ins.TRANSITIONS)


def test_stanzas_go_out_on_a_receiving_stream_only_when_bidirectional() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    out.authenticate_external()  # no <bidi/>
    pump(out, inn)
    inn.sasl_success("a.test")
    pump(out, inn)
    with pytest.raises(LocalProtocolError):
        inn.send_element(message())


# -- the initiating side's refusals ---------------------------------------------------


def test_initiating_table_refuses_out_of_order_decisions() -> None:
    out, _ = new_pair()
    with pytest.raises(LocalProtocolError):
        out.authenticate_dialback("k")  # before the header
    out, _ = new_pair()
    with pytest.raises(LocalProtocolError):
        out.send_element(message())
    out, inn = new_pair()
    to_auth(out, inn)
    with pytest.raises(LocalProtocolError):
        out.established()  # not authenticated


def test_a_stanza_on_a_stream_that_is_not_bidirectional_is_refused() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    events = out.receive_data(b"<message from='b@b.test' to='a@a.test'/>")
    assert ended(events).condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


def test_a_second_header_is_invalid_xml() -> None:
    out, inn = new_pair()
    out.start()
    pump(out, inn)
    events = out.receive_data(HEADER.format(frm="b.test", to="a.test").encode())
    assert of(events, StreamEnded)


def test_the_initiating_side_reads_the_peers_stream_error() -> None:
    out, inn = new_pair()
    out.start()
    pump(out, inn)
    events = out.receive_data(
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    assert ended(events).condition is StreamCondition.HOST_UNKNOWN and out.is_closed


@pytest.mark.parametrize("state", [s for s in outs.State if s is not outs.State.CLOSED])
@pytest.mark.parametrize("inp", sorted(outs.LOCAL_INPUTS))
def test_initiating_table_local_inputs_outside_it_raise(state: outs.State, inp: outs.Input) -> None:
    if (state, inp) in outs.TRANSITIONS:
        return
    out, _ = new_pair()
    out.state = state
    with pytest.raises(LocalProtocolError):
        out._step(inp)


# -- dialback keys (XEP-0185) -------------------------------------------------------------


def test_dialback_key_is_xep_0185s_hmac() -> None:
    import hashlib
    import hmac

    key = dialback.dialback_key(
        b"secret", receiving="b.test", originating="a.test", stream_id="D60000229F"
    )
    expected = hmac.new(
        hashlib.sha256(b"secret").hexdigest().encode(),
        b"b.test a.test D60000229F",
        hashlib.sha256,
    ).hexdigest()
    assert key == expected and len(key) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"receiving": "c.test"},
        {"originating": "evil.test"},
        {"stream_id": "other"},
    ],
)
def test_a_key_for_another_stream_or_domain_does_not_verify(change: dict[str, str]) -> None:
    args = {"receiving": "b.test", "originating": "a.test", "stream_id": "abc"}
    key = dialback.dialback_key(SECRET, **args)
    assert dialback.is_valid_key(SECRET, key.upper(), **args)
    assert not dialback.is_valid_key(SECRET, key, **{**args, **change})
    assert not dialback.is_valid_key(b"another secret", key, **args)
    assert not dialback.is_valid_key(SECRET, "", **args)


def test_dialback_answers_swap_the_addresses() -> None:
    request = dialback.parse(
        dialback.verify_request(from_="b.test", to="a.test", stream_id="s1", key="k")
    )
    answer = dialback.answer(request, is_valid=True)
    assert answer.tag == dialback.VERIFY
    assert (answer.get("from"), answer.get("to"), answer.get("id"), answer.get("type")) == (
        "a.test",
        "b.test",
        "s1",
        "valid",
    )
    err = dialback.parse(dialback.error(request, "item-not-found"))
    assert err.type == "error" and err.to == "b.test"


# -- streams per pair of domains, and more domains on one stream ----------------------------


def test_a_stream_opened_as_our_chat_domain_to_the_peers_chat_domain() -> None:
    """A room's stream: from chat.a.test, to chat.b.test; EXTERNAL names the room domain."""
    out, inn = new_pair(local="chat.a.test", remote="chat.b.test")
    feat = to_auth(out, inn)
    assert inn.local == "chat.b.test" and inn.peer == "chat.a.test"
    assert feat.mechanisms == ("EXTERNAL",)
    out.authenticate_external()
    _, iev = pump(out, inn)
    assert of(iev, ExternalAuthRequested) == [ExternalAuthRequested("chat.a.test")]
    inn.sasl_success("chat.a.test")
    pump(out, inn)
    out.established()
    out.send_element(message("room@chat.a.test/alice", "room@chat.b.test"))
    _, iev = pump(out, inn)
    assert [e.element.get("from") for e in of(iev, StanzaReceived)] == ["room@chat.a.test/alice"]
    assert inn.domains == {"chat.a.test"}


def test_the_receiving_header_answers_from_the_domain_it_was_opened_to() -> None:
    inn = ins.S2SInStream(
        domains_served=frozenset({"b.test", "chat.b.test"}), is_tls_active=True, limits=LIMITS
    )
    inn.receive_data(HEADER.format(frm="a.test", to="chat.b.test").encode())
    head = b"".join(inn.data_to_send()).decode()
    assert "from='chat.b.test'" in head and "to='a.test'" in head


def test_dialback_adds_another_domain_to_an_established_stream() -> None:
    """XEP-0220 §2.4 multiplexing: a second ``<db:result/>`` for chat.a.test on a.test's stream."""
    out, inn = new_pair()
    to_auth(out, inn)
    out.authenticate_dialback("k1")
    _, iev = pump(out, inn)
    (first,) = of(iev, DialbackReceived)
    inn.dialback_valid(first.dialback)
    pump(out, inn)
    assert out.state is outs.State.ESTABLISHED
    events = inn.receive_data(b"<db:result from='chat.a.test' to='b.test'>k2</db:result>")
    (second,) = of(events, DialbackReceived)
    assert second.dialback.from_ == "chat.a.test" and inn.state is ins.State.ESTABLISHED
    inn.dialback_valid(second.dialback)
    assert inn.domains == {"a.test", "chat.a.test"}
    oev, _ = pump(out, inn)
    answers = [e.dialback for e in of(oev, DialbackReceived)]
    assert [(a.from_, a.to, a.type) for a in answers] == [("b.test", "chat.a.test", "valid")]


def test_a_verify_request_names_the_domain_the_key_was_for() -> None:
    out, inn = new_pair()
    to_auth(out, inn)
    out.verify(stream_id="s1", key="k", from_="chat.a.test")
    out.verify(stream_id="s2", key="k")
    _, iev = pump(out, inn)
    requests = [e.dialback for e in of(iev, DialbackReceived)]
    assert [(r.from_, r.to, r.stream_id) for r in requests] == [
        ("chat.a.test", "b.test", "s1"),
        ("a.test", "b.test", "s2"),
    ]
