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
    AWAIT_BIND --resume (XEP-0198), then bound--> ESTABLISHED

Nonzas (XEP-0198 stream management, XEP-0352 client state) are top-level
elements that are not stanzas and never change the state: :data:`NONZA_STATES`
says where each is allowed (elsewhere it is refused like any unknown element)
and the machine hands it on as an event for the driver to decide on.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns
from carewire.xmpp.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StreamCondition,
    stream_error_element,
)
from carewire.xmpp.parser import (
    ElementReceived,
    ParserLimits,
    StreamOpened,
    StreamParser,
    parse_document,
)
from carewire.xmpp.xml import framing_close, framing_open, serialize, stream_header

XML_LANG = f"{{{ns.XML}}}lang"
_STREAM_ROOT = f"{{{ns.STREAM}}}stream"
_FRAMING_OPEN = f"{{{ns.FRAMING}}}open"
_FRAMING_CLOSE = f"{{{ns.FRAMING}}}close"
_STARTTLS = f"{{{ns.TLS}}}starttls"
_AUTH = f"{{{ns.SASL}}}auth"
_RESPONSE = f"{{{ns.SASL}}}response"
_ABORT = f"{{{ns.SASL}}}abort"
_IQ = f"{{{ns.CLIENT}}}iq"
_BIND = f"{{{ns.BIND}}}bind"
_STANZAS = frozenset({f"{{{ns.CLIENT}}}message", f"{{{ns.CLIENT}}}presence", _IQ})
SM = "urn:xmpp:sm:3"  # XEP-0198
CSI = "urn:xmpp:csi:0"  # XEP-0352
MAX_SEQ = 2**32  # XEP-0198 §4: sequence numbers are unsigned 32-bit, wrapping to zero


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
    FAILURE = "failure"
    BOUND = "bound"
    BIND_FAILED = "bind-failed"


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
REMOTE_INPUTS = frozenset(
    {
        In.OPEN,
        In.STARTTLS,
        In.AUTH,
        In.RESPONSE,
        In.ABORT,
        In.BIND,
        In.STANZA,
        In.PREAUTH_IQ,
        In.OTHER,
        In.CLOSE,
    }
)
# The stream error for a remote input the table does not allow, by state.
REMOTE_REFUSALS: dict[State, StreamCondition] = {
    S.ESTABLISHED: StreamCondition.UNSUPPORTED_STANZA_TYPE,
    S.AWAIT_STARTTLS: StreamCondition.POLICY_VIOLATION,
}
_OPEN_STATES = frozenset({S.OPEN_PLAIN, S.OPEN_TLS, S.OPEN_AUTHED})
# XEP-0198 §5: a resumed stream is bound again, to the former session.
TRANSITIONS[(S.AWAIT_BIND, In.BOUND)] = S.ESTABLISHED


class Nonza(StrEnum):
    """Top-level elements that are neither stanzas nor negotiation (they never change the state)."""

    SM_ENABLE = "sm-enable"
    SM_RESUME = "sm-resume"
    SM_REQUEST = "sm-request"  # <r/>
    SM_ACK = "sm-ack"  # <a/>
    CSI_ACTIVE = "csi-active"
    CSI_INACTIVE = "csi-inactive"


NONZA_TAGS: dict[str, Nonza] = {
    f"{{{SM}}}enable": Nonza.SM_ENABLE,
    f"{{{SM}}}resume": Nonza.SM_RESUME,
    f"{{{SM}}}r": Nonza.SM_REQUEST,
    f"{{{SM}}}a": Nonza.SM_ACK,
    f"{{{CSI}}}active": Nonza.CSI_ACTIVE,
    f"{{{CSI}}}inactive": Nonza.CSI_INACTIVE,
}
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


class Framing(StrEnum):
    """How the stream is carried."""

    TCP = "tcp"  # RFC 6120: one long XML document per direction
    WEBSOCKET = "websocket"  # RFC 7395: one element per WebSocket message


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """What the machine advertises; decided by the server, fixed per connection."""

    domain: str
    framing: Framing = Framing.TCP
    is_tls_active: bool = False  # direct TLS (XEP-0368) and WebSocket over HTTPS
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    pre_auth_features: tuple[Element, ...] = ()
    post_auth_features: tuple[Element, ...] = ()
    allow_preauth_iq: bool = False
    limits: ParserLimits = field(default_factory=ParserLimits)
    # Namespaces whose nonzas the stream accepts (SM, CSI): only what the server advertises.
    nonza_namespaces: frozenset[str] = frozenset()


# -- events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The client opened (or restarted) the stream; features were sent."""

    lang: str


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """``<proceed/>`` is queued: write it, then wrap the transport in TLS."""


@dataclass(frozen=True, slots=True)
class AuthRequested:
    """SASL ``<auth/>`` with its mechanism and optional initial response."""

    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """A SASL ``<response/>``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SaslAborted:
    """The client aborted the SASL exchange (``<failure><aborted/>`` already queued)."""


@dataclass(frozen=True, slots=True)
class BindRequested:
    """Resource binding; ``resource`` is None when the server should pick one."""

    iq_id: str
    resource: str | None


@dataclass(frozen=True, slots=True)
class PreAuthIq:
    """An IQ on a stream not yet authenticated (only when allowed, XEP-0077)."""

    element: Element


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    """A message, presence or IQ from the bound client."""

    element: Element


@dataclass(frozen=True, slots=True)
class SmEnableRequested:
    """XEP-0198 ``<enable/>``: the client asks for acks (and resumption when ``resume``)."""

    resume: bool
    max: int | None  # the client's preferred resumption time in seconds


@dataclass(frozen=True, slots=True)
class SmResumeRequested:
    """XEP-0198 ``<resume/>``; ``h`` is None when the attribute is missing or malformed."""

    previd: str
    h: int | None


@dataclass(frozen=True, slots=True)
class SmAckRequested:
    """XEP-0198 ``<r/>``: answer with the count of handled stanzas."""


@dataclass(frozen=True, slots=True)
class SmAckReceived:
    """XEP-0198 ``<a/>``; ``h`` is None when the attribute is missing or malformed."""

    h: int | None


@dataclass(frozen=True, slots=True)
class ClientStateChanged:
    """XEP-0352: the client became active or inactive."""

    is_active: bool


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream is over (the client closed it or we sent a stream error); close the transport."""

    condition: StreamCondition | None = None
    text: str = ""


Event = (
    StreamStarted
    | StartTlsRequested
    | AuthRequested
    | SaslResponse
    | SaslAborted
    | BindRequested
    | PreAuthIq
    | StanzaReceived
    | SmEnableRequested
    | SmResumeRequested
    | SmAckRequested
    | SmAckReceived
    | ClientStateChanged
    | StreamEnded
)


class C2SStream:
    """The server side of one client stream."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.state = S.OPEN_TLS if config.is_tls_active else S.OPEN_PLAIN
        self.is_tls_active = config.is_tls_active
        self.authenticated_as: str | None = None
        self.stream_id = ""
        # How the stream ended: the client's closing tag, or the condition of our stream error.
        self.is_closed_by_peer = False
        self.end_condition: StreamCondition | None = None
        self._is_header_sent = False
        self._out: list[bytes] = []
        self._parser = StreamParser(config.limits)
        self._ws = config.framing is Framing.WEBSOCKET
        self._stanza_parent = None if self._ws else ns.CLIENT
        self._nonzas = {
            tag: nonza
            for tag, nonza in NONZA_TAGS.items()
            if tag[1:].split("}", 1)[0] in config.nonza_namespaces
        }

    # -- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes of a TCP stream; returns the events they complete."""
        if self.state is S.CLOSED:
            return []
        error: RemoteProtocolError | None = None
        try:
            parsed = self._parser.feed(data)
        except RemoteProtocolError as err:
            parsed, error = err.completed, err
        events: list[Event] = []
        for item in parsed:
            ev: Event | None
            if isinstance(item, StreamOpened):
                ev = self._on_open(item.tag, item.attrs)
            elif isinstance(item, ElementReceived):
                ev = self._on_element(item.element)
            else:
                ev = self._on_close()
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
            element = parse_document(message, self.config.limits)
        except RemoteProtocolError as err:
            return [self._fail(err.condition, err.text)]
        ev: Event | None
        if element.tag == _FRAMING_OPEN:
            ev = self._on_open(element.tag, dict(element.attrib))
        elif element.tag == _FRAMING_CLOSE:
            ev = self._on_close()
        else:
            ev = self._on_element(element)
        return [ev] if ev is not None else []

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
        expected = _FRAMING_OPEN if self._ws else _STREAM_ROOT
        if tag != expected:
            return self._fail(StreamCondition.INVALID_NAMESPACE, "wrong stream root element")
        version = attrs.get("version", "0.9")
        try:
            major = int(version.split(".", 1)[0])
        except ValueError:
            major = 0
        if major < 1:
            return self._fail(StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 is required")
        to = attrs.get("to")
        if to is not None and to.lower().rstrip(".") != self.config.domain:
            return self._fail(
                StreamCondition.HOST_UNKNOWN, "this server does not serve that domain"
            )
        lang = attrs.get(XML_LANG) or "en"
        self._send_header()
        nxt = self._step(In.OPEN)
        assert nxt is not None
        self._send_features()
        return StreamStarted(lang=lang)

    def _on_close(self) -> StreamEnded:
        """RFC 6120 §4.4: answer the closing tag with ours and end."""
        if self.state is not S.CLOSED:
            if self._is_header_sent or self._ws:
                self._emit(framing_close() if self._ws else "</stream:stream>")
            self.state = S.CLOSED
            self.is_closed_by_peer = True
        return StreamEnded()

    def _classify(self, element: Element) -> Input:
        tag = element.tag
        if tag == _STARTTLS:
            return In.STARTTLS
        if tag == _AUTH:
            return In.AUTH
        if tag == _RESPONSE:
            return In.RESPONSE
        if tag == _ABORT:
            return In.ABORT
        if tag in _STANZAS:
            if (
                tag == _IQ
                and self.state in (S.AWAIT_BIND, S.BINDING)
                and element.get("type") == "set"
                and len(element) == 1
                and element[0].tag == _BIND
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
            return _nonza_event(nonza, element)
        inp = self._classify(element)
        prev = self.state
        if self._step(inp) is None:
            return self._refuse(inp)
        if inp is In.STANZA:
            return StanzaReceived(element)
        if inp is In.STARTTLS:
            self._emit(f"<proceed xmlns='{ns.TLS}'/>")
            return StartTlsRequested()
        if inp is In.AUTH:
            if prev is S.AWAIT_STARTTLS:
                self._sasl_failure_xml("encryption-required", "STARTTLS is required first")
                return None
            return self._on_auth(element)
        if inp is In.RESPONSE:
            data = self._b64(element.text)
            if data is None:
                self._sasl_bad_encoding()
                return None
            return SaslResponse(data)
        if inp is In.ABORT:
            self._sasl_failure_xml("aborted", "")
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
            self._sasl_failure_xml("invalid-mechanism", "")
            return None
        text = (element.text or "").strip()
        if not text:
            return AuthRequested(mechanism=mechanism, initial_response=None)
        data = self._b64(text)
        if data is None:
            self._sasl_bad_encoding()
            return None
        return AuthRequested(mechanism=mechanism, initial_response=data)

    def _sasl_bad_encoding(self) -> None:
        self.state = S.AWAIT_AUTH
        self._sasl_failure_xml("incorrect-encoding", "")

    @staticmethod
    def _b64(text: str | None) -> bytes | None:
        """RFC 6120 §6.4.2: '=' is an empty response; otherwise strict base64."""
        text = (text or "").strip()
        if text in ("", "="):
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None

    # -- local decisions ------------------------------------------------------

    def tls_established(self) -> None:
        """The transport now speaks TLS: a new stream begins (RFC 6120 §5.4.3.3)."""
        self._step(In.TLS_DONE)
        self.is_tls_active = True
        self._restart()

    def sasl_challenge(self, data: bytes) -> None:
        """Send a SASL challenge."""
        self._step(In.CHALLENGE)
        self._emit(f"<challenge xmlns='{ns.SASL}'>{self._enc(data)}</challenge>")

    def sasl_success(self, username: str, data: bytes | None = None) -> None:
        """Authentication succeeded: send ``<success/>`` and expect a new stream (§6.4.6)."""
        self._step(In.SUCCESS)
        body = self._enc(data) if data else ""
        self._emit(f"<success xmlns='{ns.SASL}'>{body}</success>")
        self.authenticated_as = username
        self._restart()

    def sasl_failure(self, condition: str, text: str = "") -> None:
        """Authentication failed with a SASL condition (§6.5); the client may retry."""
        self._step(In.FAILURE)
        self._sasl_failure_xml(condition, text)

    def bind_success(self, iq_id: str, full_jid: str) -> None:
        """Resource binding succeeded (RFC 6120 §7.6.1)."""
        self._step(In.BOUND)
        iq = Element(_IQ, {"type": "result", "id": iq_id})
        jid = SubElement(SubElement(iq, _BIND), f"{{{ns.BIND}}}jid")
        jid.text = full_jid
        self._emit(serialize(iq, self._stanza_parent))

    def bind_failure(self, iq_id: str, condition: str, error_type: str = "cancel") -> None:
        """Resource binding failed with a stanza error (RFC 6120 §7.6.2)."""
        self._step(In.BIND_FAILED)
        iq = Element(_IQ, {"type": "error", "id": iq_id})
        err = SubElement(iq, f"{{{ns.CLIENT}}}error", {"type": error_type})
        SubElement(err, f"{{{ns.STANZAS_ERR}}}{condition}")
        self._emit(serialize(iq, self._stanza_parent))

    def send_preauth(self, element: Element) -> None:
        """Answer a pre-authentication IQ."""
        if self.state is not S.AWAIT_AUTH:
            raise LocalProtocolError("pre-auth replies only before authentication")
        self._emit(serialize(element, self._stanza_parent))

    def send_nonza(self, element: Element) -> None:
        """Queue a nonza (XEP-0198 ``<enabled/>``, ``<a/>``, ``<r/>``, ``<failed/>``…).

        Raises:
            LocalProtocolError: before authentication.
        """
        if self.state is S.CLOSED:
            return
        if self.authenticated_as is None or self.state in _OPEN_STATES:
            raise LocalProtocolError(f"cannot send nonzas in state {self.state.value}")
        self._emit(serialize(element, self._stanza_parent))

    def sm_resumed(self, previd: str, h: int) -> None:
        """XEP-0198 §5: the former session is resumed on this stream (it is bound again)."""
        if self.state is not S.AWAIT_BIND:
            prev = self.state
            self.state = S.CLOSED
            raise LocalProtocolError(f"cannot resume in state {prev.value}")
        self._step(In.BOUND)
        self._emit(f"<resumed xmlns='{SM}' h='{h % MAX_SEQ}' previd='{_escape_attr(previd)}'/>")

    def send_element(self, element: Element) -> None:
        """Queue a stanza for the bound client."""
        if self.state is not S.ESTABLISHED and self.state is not S.BINDING:
            if self.state is S.CLOSED:
                return
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.value}")
        self._emit(serialize(element, self._stanza_parent))

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
        self._emit(framing_close() if self._ws else "</stream:stream>")
        self.state = S.CLOSED

    def data_to_send(self) -> list[bytes]:
        """Take everything queued for writing (one item per WebSocket message)."""
        out, self._out = self._out, []
        return out

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over."""
        return self.state is S.CLOSED

    # -- output helpers -------------------------------------------------------

    def _emit(self, text: str) -> None:
        self._out.append(text.encode("utf-8"))

    @staticmethod
    def _enc(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii") if data else "="

    def _restart(self) -> None:
        self._parser.reset()
        self._is_header_sent = False

    def _send_header(self) -> None:
        self.stream_id = secrets.token_urlsafe(12)
        if self._ws:
            self._emit(framing_open(from_=self.config.domain, stream_id=self.stream_id))
        else:
            self._emit(stream_header(from_=self.config.domain, to=None, stream_id=self.stream_id))
        self._is_header_sent = True

    def _features(self) -> list[Element]:
        if self.state is S.AWAIT_STARTTLS:
            tls = Element(f"{{{ns.TLS}}}starttls")
            SubElement(tls, f"{{{ns.TLS}}}required")
            return [tls]
        if self.state is S.AWAIT_AUTH:
            mechs = Element(f"{{{ns.SASL}}}mechanisms")
            for m in self.config.mechanisms:
                SubElement(mechs, f"{{{ns.SASL}}}mechanism").text = m
            return [mechs, *self.config.pre_auth_features]
        bind = Element(_BIND)
        # RFC 6121 legacy session establishment, optional (RFC 3921 compat for old clients).
        session = Element(f"{{{ns.SESSION}}}session")
        SubElement(session, f"{{{ns.SESSION}}}optional")
        return [bind, session, *self.config.post_auth_features]

    def _send_features(self) -> None:
        inner = "".join(serialize(e, ns.STREAM) for e in self._features())
        decl = f" xmlns:stream='{ns.STREAM}'" if self._ws else ""
        self._emit(f"<stream:features{decl}>{inner}</stream:features>")

    def _sasl_failure_xml(self, condition: str, text: str) -> None:
        t = f"<text xml:lang='en'>{_escape(text)}</text>" if text else ""
        self._emit(f"<failure xmlns='{ns.SASL}'><{condition}/>{t}</failure>")

    def _fail(
        self, condition: StreamCondition, text: str = "", app_condition: Element | None = None
    ) -> StreamEnded:
        """Send a stream error and close (RFC 6120 §4.9.1.1)."""
        if self.state is not S.CLOSED:
            if not self._is_header_sent and not self._ws:
                self._send_header()  # §4.9.1.2: the header comes first
            element = stream_error_element(condition, text)
            if app_condition is not None:
                element.append(app_condition)
            err = serialize(element, ns.STREAM)
            self.end_condition = condition
            if self._ws:
                self._emit(f"<stream:error xmlns:stream='{ns.STREAM}'>{_inner(err)}</stream:error>")
                self._emit(framing_close())
            else:
                self._emit(f"<stream:error>{_inner(err)}</stream:error></stream:stream>")
            self.state = S.CLOSED
        return StreamEnded(condition=condition, text=text)


def _inner(serialized: str) -> str:
    """The children of a serialised element (strip its own start and end tags)."""
    start = serialized.index(">") + 1
    end = serialized.rindex("<")
    return serialized[start:end]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(text: str) -> str:
    return _escape(text).replace("'", "&apos;").replace('"', "&quot;")


def parse_seq(value: str | None) -> int | None:
    """An XEP-0198 'h' value (xs:unsignedInt), or None when missing or malformed."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    n = int(value)
    return n if n < MAX_SEQ else None


def _is_true(value: str | None) -> bool:
    return value in ("true", "1")  # xs:boolean


def _nonza_event(nonza: Nonza, element: Element) -> Event:
    """The event for an accepted nonza."""
    if nonza is Nonza.SM_ENABLE:
        max_value = parse_seq(element.get("max"))
        return SmEnableRequested(resume=_is_true(element.get("resume")), max=max_value or None)
    if nonza is Nonza.SM_RESUME:
        return SmResumeRequested(previd=element.get("previd", ""), h=parse_seq(element.get("h")))
    if nonza is Nonza.SM_REQUEST:
        return SmAckRequested()
    if nonza is Nonza.SM_ACK:
        return SmAckReceived(h=parse_seq(element.get("h")))
    return ClientStateChanged(is_active=nonza is Nonza.CSI_ACTIVE)
