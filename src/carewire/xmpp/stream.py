"""Server side of an XMPP client stream as a sans-IO state machine (RFC 6120 §4–§7, RFC 7395).

Theory of operation
-------------------
:class:`C2SStream` turns bytes (TCP) or messages (WebSocket) into events and
the caller's decisions into bytes. It owns the parser and the negotiation
state; it never performs I/O, awaits, or consults credentials. The caller
(the connection driver) feeds input, reads :class:`Event` objects, answers
them through the ``sasl_*``/``bind_*``/``tls_established`` methods, and writes
whatever :meth:`C2SStream.data_to_send` returns.

Negotiation is the data table :data:`TRANSITIONS`: ``(state, input) →
next state``. Remote inputs missing from the table are the peer's fault: the
machine emits the stream error of :data:`REMOTE_REFUSALS` (default
``not-authorized`` before binding, ``unsupported-stanza-type`` after) and
goes to ``CLOSED``. Local inputs missing from the table raise
:class:`LocalProtocolError` and also end in ``CLOSED``.

    OPEN_PLAIN --open--> AWAIT_STARTTLS --starttls--> TLS_HANDSHAKE --tls done--> OPEN_TLS
    OPEN_TLS --open--> AWAIT_AUTH --auth--> SASL --success--> OPEN_AUTHED
    OPEN_AUTHED --open--> AWAIT_BIND --bind--> BINDING --bound--> ESTABLISHED
    AWAIT_AUTH --authenticate (SASL2)--> SASL --success2--> AWAIT_BIND (no restart, XEP-0388)
    AWAIT_BIND --bound (Bind2 inline, XEP-0386)--> ESTABLISHED
    AWAIT_BIND --resume (XEP-0198), then bound--> ESTABLISHED

Nonzas (XEP-0198 stream management, XEP-0352 client state) are top-level
elements that are not stanzas and never change the state: :data:`NONZA_STATES`
says where each is allowed (elsewhere it is refused like any unknown element)
and the machine hands it on as an event for the driver to decide on.

Two private modules complete this one: :mod:`carewire.xmpp._framing` holds
what differs between RFC 6120 TCP framing and RFC 7395 WebSocket framing
(reading input, rendering and queueing output), :mod:`carewire.xmpp._events`
the events and the nonza vocabulary, re-exported here.
"""

from __future__ import annotations

from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.xmpp import ns, sasl2
from carewire.xmpp._events import (
    CSI,
    MAX_SEQ,
    NONZA_TAGS,
    SM,
    AuthRequested,
    BindRequested,
    ClientStateChanged,
    Event,
    Nonza,
    PreAuthIq,
    SaslAborted,
    SaslResponse,
    SmAckReceived,
    SmAckRequested,
    SmEnableRequested,
    SmResumeRequested,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    StreamStarted,
    nonza_event,
    nonzas_of,
    parse_seq,
)
from carewire.xmpp._framing import (
    BIND,
    Framing,
    Reader,
    StreamConfig,
    Writer,
    bind_features,
    decode_sasl,
    escape_attr,
    sasl_features,
    starttls_features,
)
from carewire.xmpp.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StreamCondition,
    stream_error_element,
)
from carewire.xmpp.parser import ElementReceived, ParserEvent, StreamOpened

__all__ = [
    "CSI",
    "LOCAL_INPUTS",
    "MAX_SEQ",
    "NONZA_STATES",
    "NONZA_TAGS",
    "REMOTE_INPUTS",
    "REMOTE_REFUSALS",
    "SM",
    "TRANSITIONS",
    "AuthRequested",
    "BindRequested",
    "C2SStream",
    "ClientStateChanged",
    "Event",
    "Framing",
    "Input",
    "Nonza",
    "PreAuthIq",
    "SaslAborted",
    "SaslResponse",
    "SmAckReceived",
    "SmAckRequested",
    "SmEnableRequested",
    "SmResumeRequested",
    "StanzaReceived",
    "StartTlsRequested",
    "State",
    "StreamConfig",
    "StreamEnded",
    "StreamStarted",
    "nonza_event",
    "parse_seq",
]

XML_LANG = f"{{{ns.XML}}}lang"
_IQ = f"{{{ns.CLIENT}}}iq"
_STANZAS = frozenset({f"{{{ns.CLIENT}}}message", f"{{{ns.CLIENT}}}presence", _IQ})


class State(StrEnum):
    """Negotiation states of a server-side client stream."""

    OPEN_PLAIN = "open-plain"  # waiting for the stream header, TLS not yet active
    AWAIT_STARTTLS = "await-starttls"
    TLS_HANDSHAKE = "tls-handshake"  # <proceed/> sent; the driver is wrapping the socket
    OPEN_TLS = "open-tls"  # waiting for the stream header over TLS
    AWAIT_AUTH = "await-auth"
    SASL = "sasl"  # a SASL exchange is in progress
    OPEN_AUTHED = "open-authed"  # waiting for the header of the authenticated stream
    AWAIT_BIND = "await-bind"
    BINDING = "binding"  # the driver is deciding on a bind request
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(StrEnum):
    """Everything that can move the machine: remote elements and local decisions."""

    OPEN = "open"
    STARTTLS = "starttls"
    AUTH = "auth"
    RESPONSE = "response"
    ABORT = "abort"
    BIND = "bind"
    STANZA = "stanza"
    PREAUTH_IQ = "preauth-iq"
    OTHER = "other"  # any other top-level element
    CLOSE = "close"
    # local
    TLS_DONE = "tls-done"
    CHALLENGE = "challenge"
    SUCCESS = "success"
    SUCCESS2 = "success2"  # XEP-0388: no stream restart
    FAILURE = "failure"
    BOUND = "bound"
    BIND_FAILED = "bind-failed"


# Negotiation elements by tag (stanzas are classified by state, see C2SStream._classify).
_NEGOTIATION = {
    f"{{{ns.TLS}}}starttls": Input.STARTTLS,
    f"{{{ns.SASL}}}auth": Input.AUTH,
    f"{{{ns.SASL}}}response": Input.RESPONSE,
    f"{{{ns.SASL}}}abort": Input.ABORT,
}
# XEP-0388 SASL2: the same moves, only when the server offers it.
_SASL2 = {
    sasl2.AUTHENTICATE: Input.AUTH,
    sasl2.RESPONSE: Input.RESPONSE,
    sasl2.ABORT: Input.ABORT,
}


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.OPEN_PLAIN, In.OPEN): S.AWAIT_STARTTLS,
    (S.AWAIT_STARTTLS, In.STARTTLS): S.TLS_HANDSHAKE,
    # RFC 6120 §6.4.5 <encryption-required/>: auth before TLS is refused, the stream stays.
    (S.AWAIT_STARTTLS, In.AUTH): S.AWAIT_STARTTLS,
    (S.TLS_HANDSHAKE, In.TLS_DONE): S.OPEN_TLS,
    (S.OPEN_TLS, In.OPEN): S.AWAIT_AUTH,
    (S.AWAIT_AUTH, In.AUTH): S.SASL,
    (S.AWAIT_AUTH, In.PREAUTH_IQ): S.AWAIT_AUTH,
    (S.SASL, In.RESPONSE): S.SASL,
    (S.SASL, In.ABORT): S.AWAIT_AUTH,
    (S.SASL, In.CHALLENGE): S.SASL,
    (S.SASL, In.SUCCESS): S.OPEN_AUTHED,
    (S.SASL, In.SUCCESS2): S.AWAIT_BIND,
    (S.SASL, In.FAILURE): S.AWAIT_AUTH,
    (S.OPEN_AUTHED, In.OPEN): S.AWAIT_BIND,
    (S.AWAIT_BIND, In.BIND): S.BINDING,
    # Stanzas pipelined behind a bind request are handed on in order; the
    # driver handles them after the bind decision.
    (S.BINDING, In.STANZA): S.BINDING,
    (S.BINDING, In.BIND): S.BINDING,
    (S.BINDING, In.BOUND): S.ESTABLISHED,
    (S.BINDING, In.BIND_FAILED): S.AWAIT_BIND,
    (S.ESTABLISHED, In.STANZA): S.ESTABLISHED,
    (S.ESTABLISHED, In.BIND): S.ESTABLISHED,
}
LOCAL_INPUTS = frozenset(
    {In.TLS_DONE, In.CHALLENGE, In.SUCCESS, In.SUCCESS2, In.FAILURE, In.BOUND, In.BIND_FAILED}
)
REMOTE_INPUTS = frozenset(Input) - LOCAL_INPUTS
# The stream error for a remote input the table does not allow, by state.
REMOTE_REFUSALS: dict[State, StreamCondition] = {
    S.ESTABLISHED: StreamCondition.UNSUPPORTED_STANZA_TYPE,
    S.AWAIT_STARTTLS: StreamCondition.POLICY_VIOLATION,
}
_OPEN_STATES = frozenset({S.OPEN_PLAIN, S.OPEN_TLS, S.OPEN_AUTHED})
# XEP-0198 §5: a resumed stream is bound again, to the former session.
TRANSITIONS[(S.AWAIT_BIND, In.BOUND)] = S.ESTABLISHED


_AFTER_BIND = frozenset({S.BINDING, S.ESTABLISHED})
# Where each nonza is accepted. <enable/> before binding and <resume/> after it
# are answered with <failed/> by the driver (XEP-0198 §3, §5), so they are
# accepted on every authenticated stream; the others only once a resource
# is (being) bound.
NONZA_STATES: dict[Nonza, frozenset[State]] = {
    Nonza.SM_ENABLE: frozenset({S.AWAIT_BIND, *_AFTER_BIND}),
    Nonza.SM_RESUME: frozenset({S.AWAIT_BIND, *_AFTER_BIND}),
    Nonza.SM_REQUEST: _AFTER_BIND,
    Nonza.SM_ACK: _AFTER_BIND,
    Nonza.CSI_ACTIVE: _AFTER_BIND,
    Nonza.CSI_INACTIVE: _AFTER_BIND,
}


class C2SStream:
    """The server side of one client stream."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.state = S.OPEN_TLS if config.is_tls_active else S.OPEN_PLAIN
        self.is_tls_active = config.is_tls_active
        self.authenticated_as: str | None = None
        self.is_sasl2 = False  # the current (or last) exchange is XEP-0388's
        # How the stream ended: the client's closing tag, or the condition of our stream error.
        self.is_closed_by_peer = False
        self.end_condition: StreamCondition | None = None
        is_websocket = config.framing is Framing.WEBSOCKET
        self._reader = Reader(domain=config.domain, limits=config.limits, is_websocket=is_websocket)
        self._writer = Writer(domain=config.domain, is_websocket=is_websocket)
        self._nonzas = nonzas_of(config.nonza_namespaces)

    @property
    def stream_id(self) -> str:
        """The id of our current stream header ('' before the first)."""
        return self._writer.stream_id

    # -- input ----------------------------------------------------------------

    def compact(self) -> bool:
        """Free parser memory while the stream is idle between stanzas; True if done."""
        return self._reader.compact()

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes of a TCP stream; returns the events they complete."""
        if self.state is S.CLOSED:
            return []
        parsed, error = self._reader.feed(data)
        events: list[Event] = []
        for item in parsed:
            ev = self._on_item(item)
            if ev is not None:
                events.append(ev)
            if self.state in (S.CLOSED, S.TLS_HANDSHAKE):
                # Nothing after <starttls/> may be read before TLS (no plaintext injection).
                return events
        if error is not None:
            events.append(self._fail(error.condition, error.text))
        return events

    def receive_message(self, message: bytes | str) -> list[Event]:
        """Feed one WebSocket message (RFC 7395 §3.3); returns its events."""
        if self.state is S.CLOSED:
            return []
        try:
            item = self._reader.message(message)
        except RemoteProtocolError as err:
            return [self._fail(err.condition, err.text)]
        ev = self._on_item(item)
        return [ev] if ev is not None else []

    def _on_item(self, item: ParserEvent) -> Event | None:
        if isinstance(item, StreamOpened):
            return self._on_open(item.tag, item.attrs)
        if isinstance(item, ElementReceived):
            return self._on_element(item.element)
        return self._on_close()

    def _step(self, inp: Input) -> State | None:
        """Apply the transition table; None (after failing the stream) if not allowed."""
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            if inp in REMOTE_INPUTS:
                return None
            prev = self.state
            self.state = S.CLOSED
            raise LocalProtocolError(f"{inp.value} is not allowed in state {prev.value}")
        self.state = nxt
        return nxt

    def _refuse(self, inp: Input) -> StreamEnded:
        cond = REMOTE_REFUSALS.get(self.state, StreamCondition.NOT_AUTHORIZED)
        if inp is In.OTHER and self.state is S.ESTABLISHED:
            cond = StreamCondition.UNSUPPORTED_STANZA_TYPE
        return self._fail(cond, f"{inp.value} is not allowed now")

    def _on_open(self, tag: str, attrs: dict[str, str]) -> Event:
        if self.state not in _OPEN_STATES:
            return self._fail(StreamCondition.INVALID_XML, "unexpected stream header")
        refusal = self._reader.header_refusal(tag, attrs)
        if refusal is not None:
            return self._fail(*refusal)
        lang = attrs.get(XML_LANG) or "en"
        self._writer.header()
        nxt = self._step(In.OPEN)
        assert nxt is not None
        self._writer.features(self._features())
        return StreamStarted(lang=lang)

    def _on_close(self) -> StreamEnded:
        """RFC 6120 §4.4: answer the closing tag with ours and end."""
        if self.state is not S.CLOSED:
            if self._writer.has_document:
                self._writer.closing()
            self.state = S.CLOSED
            self.is_closed_by_peer = True
        return StreamEnded()

    def _classify(self, element: Element) -> Input:
        tag = element.tag
        if tag in _NEGOTIATION:
            return _NEGOTIATION[tag]
        if tag in _SASL2 and self.config.sasl2_offer is not None:
            return _SASL2[tag]
        if tag in _STANZAS:
            if (
                tag == _IQ
                and self.state in (S.AWAIT_BIND, S.BINDING)
                and element.get("type") == "set"
                and len(element) == 1
                and element[0].tag == BIND
            ):
                return In.BIND
            if tag == _IQ and self.state is S.AWAIT_AUTH and self.config.allow_preauth_iq:
                return In.PREAUTH_IQ
            return In.STANZA
        return In.OTHER

    def _on_element(self, element: Element) -> Event | None:
        if self.state in _OPEN_STATES:
            return self._fail(StreamCondition.NOT_AUTHORIZED, "stream header expected first")
        nonza = self._nonzas.get(element.tag)
        if nonza is not None:
            if self.state not in NONZA_STATES[nonza]:
                return self._refuse(In.OTHER)
            return nonza_event(nonza, element)
        inp = self._classify(element)
        prev = self.state
        if inp is In.AUTH and self.authenticated_as is not None:
            # RFC 6120 §6.4.6 / XEP-0388: authentication happens once per stream.
            return self._fail(StreamCondition.POLICY_VIOLATION, "already authenticated")
        is_mixed = (element.tag in _SASL2) != self.is_sasl2
        if inp in (In.RESPONSE, In.ABORT) and self.state is S.SASL and is_mixed:
            return self._fail(StreamCondition.POLICY_VIOLATION, "mixed SASL profiles")
        if self._step(inp) is None:
            return self._refuse(inp)
        if inp is In.STANZA:
            return StanzaReceived(element)
        if inp is In.STARTTLS:
            self._writer.proceed()
            return StartTlsRequested()
        if inp is In.AUTH:
            if prev is S.AWAIT_STARTTLS:
                self._writer.sasl_failure("encryption-required", "STARTTLS is required first")
                return None
            self.is_sasl2 = element.tag == sasl2.AUTHENTICATE
            if self.is_sasl2:
                return self._on_authenticate(element)
            return self._on_auth(element)
        if inp is In.RESPONSE:
            data = sasl2.decode_b64(element.text) if self.is_sasl2 else decode_sasl(element.text)
            if data is None:
                self._sasl_bad_encoding()
                return None
            return SaslResponse(data)
        if inp is In.ABORT:
            self._failure("aborted", "")
            return SaslAborted()
        if inp is In.BIND:
            res = element[0].find(f"{{{ns.BIND}}}resource")
            # No stripping: PRECIS (RFC 7622 §3.4) decides what a resource may contain.
            resource = (res.text or "") if res is not None else ""
            return BindRequested(iq_id=element.get("id", ""), resource=resource or None)
        return PreAuthIq(element)

    def _on_auth(self, element: Element) -> Event | None:
        mechanism = element.get("mechanism", "")
        if mechanism not in self.config.mechanisms:
            self.state = S.AWAIT_AUTH
            self._writer.sasl_failure("invalid-mechanism", "")
            return None
        text = (element.text or "").strip()
        if not text:
            return AuthRequested(mechanism=mechanism, initial_response=None)
        data = decode_sasl(text)
        if data is None:
            self._sasl_bad_encoding()
            return None
        return AuthRequested(mechanism=mechanism, initial_response=data)

    def _on_authenticate(self, element: Element) -> Event | None:
        """XEP-0388 ``<authenticate/>``: a mechanism offered by SASL2 or FAST."""
        assert self.config.sasl2_offer is not None
        try:
            request = sasl2.parse_offered(element, self.config.sasl2_offer)
        except sasl2.MalformedAuthenticate as exc:
            self.state = S.AWAIT_AUTH
            self._failure(exc.condition, exc.text)
            return None
        return AuthRequested(
            mechanism=request.mechanism, initial_response=request.initial_response, sasl2=request
        )

    def _failure(self, condition: str, text: str) -> None:
        if self.is_sasl2:
            self._writer.element(sasl2.failure_element(condition, text))
        else:
            self._writer.sasl_failure(condition, text)

    def _sasl_bad_encoding(self) -> None:
        self.state = S.AWAIT_AUTH
        self._failure("incorrect-encoding", "")

    # -- local decisions ------------------------------------------------------

    def tls_established(self) -> None:
        """The transport now speaks TLS: a new stream begins (RFC 6120 §5.4.3.3)."""
        self._step(In.TLS_DONE)
        self.is_tls_active = True
        self._restart()

    def sasl_challenge(self, data: bytes) -> None:
        """Send a SASL challenge."""
        self._step(In.CHALLENGE)
        if self.is_sasl2:
            self._writer.element(sasl2.challenge_element(data))
        else:
            self._writer.sasl_challenge(data)

    def sasl_success(self, username: str, data: bytes | None = None) -> None:
        """Authentication succeeded: send ``<success/>`` and expect a new stream (§6.4.6)."""
        self._step(In.SUCCESS)
        self._writer.sasl_success(data)
        self.authenticated_as = username
        self._restart()

    def sasl_failure(self, condition: str, text: str = "") -> None:
        """Authentication failed with a SASL condition (§6.5); the client may retry."""
        self._step(In.FAILURE)
        self._failure(condition, text)

    def sasl2_success(self, username: str, success: Element, *, is_bound: bool) -> None:
        """XEP-0388 ``<success/>``, then the new features; no stream restart.

        ``is_bound``: a resource was bound inline (XEP-0386), the stream is
        established and the features no longer offer resource binding.
        """
        self._step(In.SUCCESS2)
        self.authenticated_as = username
        self._writer.element(success)
        if is_bound:
            self._step(In.BOUND)
            self._writer.features(self.config.post_auth_features)
        else:
            self._writer.features(bind_features(self.config.post_auth_features))

    def bind_success(self, iq_id: str, full_jid: str) -> None:
        """Resource binding succeeded (RFC 6120 §7.6.1)."""
        self._step(In.BOUND)
        self._writer.bind_result(iq_id, full_jid)

    def bind_failure(self, iq_id: str, condition: str, error_type: str = "cancel") -> None:
        """Resource binding failed with a stanza error (RFC 6120 §7.6.2)."""
        self._step(In.BIND_FAILED)
        self._writer.bind_error(iq_id, condition, error_type)

    def send_preauth(self, element: Element) -> None:
        """Answer a pre-authentication IQ."""
        if self.state is not S.AWAIT_AUTH:
            raise LocalProtocolError("pre-auth replies only before authentication")
        self._writer.element(element)

    def send_nonza(self, element: Element) -> None:
        """Queue a nonza (XEP-0198 ``<enabled/>``, ``<a/>``, ``<r/>``, ``<failed/>``…).

        Raises:
            LocalProtocolError: before authentication.
        """
        if self.state is S.CLOSED:
            return
        if self.authenticated_as is None or self.state in _OPEN_STATES:
            raise LocalProtocolError(f"cannot send nonzas in state {self.state.value}")
        self._writer.element(element)

    def sm_resumed(self, previd: str, h: int) -> None:
        """XEP-0198 §5: the former session is resumed on this stream (it is bound again)."""
        if self.state is not S.AWAIT_BIND:
            prev = self.state
            self.state = S.CLOSED
            raise LocalProtocolError(f"cannot resume in state {prev.value}")
        self._step(In.BOUND)
        self._writer.raw(
            f"<resumed xmlns='{SM}' h='{h % MAX_SEQ}' previd='{escape_attr(previd)}'/>"
        )

    def send_element(self, element: Element) -> None:
        """Queue a stanza for the bound client."""
        if self.state is not S.ESTABLISHED and self.state is not S.BINDING:
            if self.state is S.CLOSED:
                return
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.value}")
        self._writer.element(element)

    def close(
        self,
        condition: StreamCondition | None = None,
        text: str = "",
        *,
        app_condition: Element | None = None,
    ) -> None:
        """Close the stream, with a stream error when ``condition`` is given.

        ``app_condition`` is an application-specific error element added to the
        stream error (RFC 6120 §4.9.4), e.g. XEP-0198 ``<handled-count-too-high/>``.
        """
        if self.state is S.CLOSED:
            return
        if condition is not None:
            self._fail(condition, text, app_condition)
            return
        self._writer.closing()
        self.state = S.CLOSED

    def data_to_send(self) -> list[bytes]:
        """Take everything queued for writing (one item per WebSocket message)."""
        return self._writer.take()

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over."""
        return self.state is S.CLOSED

    # -- output helpers -------------------------------------------------------

    def _restart(self) -> None:
        self._reader.reset()
        self._writer.restart()

    def _features(self) -> list[Element]:
        if self.state is S.AWAIT_STARTTLS:
            return starttls_features()
        if self.state is S.AWAIT_AUTH:
            extra = list(self.config.pre_auth_features)
            if self.config.sasl2_offer is not None:
                extra += sasl2.offer_features(self.config.sasl2_offer)
            return sasl_features(self.config.mechanisms, extra)
        return bind_features(self.config.post_auth_features)

    def _fail(
        self, condition: StreamCondition, text: str = "", app_condition: Element | None = None
    ) -> StreamEnded:
        """Send a stream error and close (RFC 6120 §4.9.1.1)."""
        if self.state is not S.CLOSED:
            element = stream_error_element(condition, text)
            if app_condition is not None:
                element.append(app_condition)
            self._writer.stream_error(element)
            self.end_condition = condition
            self.state = S.CLOSED
        return StreamEnded(condition=condition, text=text)
