"""Initiating side of a server-to-server stream, sans-IO (RFC 6120, XEP-0178/0220/0288).

Theory of operation
-------------------
:class:`S2SOutStream` speaks for us to a peer server we connected to. The
peer's features arrive as :class:`FeaturesReceived`; the driver decides what
to do (STARTTLS, SASL EXTERNAL, dialback, or — once authenticated — nothing
more) through the methods below, which the table :data:`TRANSITIONS` allows
or refuses:

    AWAIT_OPEN --open--> AWAIT_FEATURES --features--> NEGOTIATING
    NEGOTIATING --starttls--> AWAIT_PROCEED --proceed--> TLS_HANDSHAKE --tls done--> AWAIT_OPEN
    NEGOTIATING --external--> AWAIT_SASL --success--> AWAIT_OPEN (authenticated) … --> ESTABLISHED
    NEGOTIATING --dialback--> AWAIT_DIALBACK --valid--> ESTABLISHED

``<db:verify/>`` requests may go out in NEGOTIATING, AWAIT_DIALBACK and
ESTABLISHED (piggybacking, XEP-0220 §2.5); their answers come back as
:class:`DialbackReceived`. Stanzas are accepted from the peer only on an
established bidirectional stream (XEP-0288).
"""

from __future__ import annotations

import base64
from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.xmpp import dialback, ns
from carewire.xmpp.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StreamCondition,
    stream_error_element,
)
from carewire.xmpp.parser import ElementReceived, ParserLimits, StreamOpened, StreamParser
from carewire.xmpp.s2s_common import (
    EXTERNAL,
    SERVER_STANZAS,
    STREAM_ROOT,
    DialbackReceived,
    FeaturesReceived,
    S2SEvent,
    SaslOutcome,
    ServerWriter,
    StanzaReceived,
    StreamEnded,
    StreamStarted,
    TlsProceed,
    to_kernel,
)


class State(StrEnum):
    """Negotiation states of an initiating server stream."""

    IDLE = "idle"  # connected, our header not sent yet
    AWAIT_OPEN = "await-open"
    AWAIT_FEATURES = "await-features"
    NEGOTIATING = "negotiating"  # the driver decides on the features
    AWAIT_PROCEED = "await-proceed"
    TLS_HANDSHAKE = "tls-handshake"
    AWAIT_SASL = "await-sasl"
    AWAIT_DIALBACK = "await-dialback"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(StrEnum):
    """Remote elements and local decisions."""

    OPEN = "open"
    FEATURES = "features"
    PROCEED = "proceed"
    SASL_SUCCESS = "sasl-success"
    SASL_FAILURE = "sasl-failure"
    DB_RESULT = "db-result"
    DB_VERIFY = "db-verify"
    STANZA = "stanza"
    OTHER = "other"
    # local
    START = "start"
    STARTTLS = "starttls"
    TLS_DONE = "tls-done"
    EXTERNAL = "external"
    DIALBACK = "dialback"
    VERIFY = "verify"
    DONE = "done"  # authenticated stream, features read: established


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.IDLE, In.START): S.AWAIT_OPEN,
    (S.AWAIT_OPEN, In.OPEN): S.AWAIT_FEATURES,
    (S.AWAIT_FEATURES, In.FEATURES): S.NEGOTIATING,
    (S.NEGOTIATING, In.STARTTLS): S.AWAIT_PROCEED,
    (S.AWAIT_PROCEED, In.PROCEED): S.TLS_HANDSHAKE,
    (S.TLS_HANDSHAKE, In.TLS_DONE): S.AWAIT_OPEN,
    (S.NEGOTIATING, In.EXTERNAL): S.AWAIT_SASL,
    (S.AWAIT_SASL, In.SASL_SUCCESS): S.AWAIT_OPEN,
    (S.AWAIT_SASL, In.SASL_FAILURE): S.NEGOTIATING,
    (S.NEGOTIATING, In.DIALBACK): S.AWAIT_DIALBACK,
    (S.AWAIT_DIALBACK, In.DB_RESULT): S.ESTABLISHED,
    (S.NEGOTIATING, In.DONE): S.ESTABLISHED,
    (S.NEGOTIATING, In.VERIFY): S.NEGOTIATING,
    (S.NEGOTIATING, In.DB_VERIFY): S.NEGOTIATING,
    (S.AWAIT_DIALBACK, In.VERIFY): S.AWAIT_DIALBACK,
    (S.AWAIT_DIALBACK, In.DB_VERIFY): S.AWAIT_DIALBACK,
    (S.ESTABLISHED, In.VERIFY): S.ESTABLISHED,
    (S.ESTABLISHED, In.DB_VERIFY): S.ESTABLISHED,
    (S.ESTABLISHED, In.DB_RESULT): S.ESTABLISHED,
    (S.ESTABLISHED, In.STANZA): S.ESTABLISHED,
}
LOCAL_INPUTS = frozenset(
    {In.START, In.STARTTLS, In.TLS_DONE, In.EXTERNAL, In.DIALBACK, In.VERIFY, In.DONE}
)
REMOTE_INPUTS = frozenset(Input) - LOCAL_INPUTS
_ELEMENTS = {
    f"{{{ns.STREAM}}}features": In.FEATURES,
    f"{{{ns.TLS}}}proceed": In.PROCEED,
    f"{{{ns.SASL}}}success": In.SASL_SUCCESS,
    f"{{{ns.SASL}}}failure": In.SASL_FAILURE,
    dialback.RESULT: In.DB_RESULT,
    dialback.VERIFY: In.DB_VERIFY,
}


def read_features(element: Element) -> FeaturesReceived:
    """What ``<stream:features/>`` offers a server (RFC 6120 §4.3.2)."""
    mechs = element.find(f"{{{ns.SASL}}}mechanisms")
    names = () if mechs is None else tuple((m.text or "").strip() for m in mechs)
    return FeaturesReceived(
        has_starttls=element.find(f"{{{ns.TLS}}}starttls") is not None,
        mechanisms=names,
        has_dialback=element.find(f"{{{ns.DIALBACK_FEATURE}}}dialback") is not None,
        has_bidi=element.find(f"{{{ns.BIDI_FEATURE}}}bidi") is not None,
    )


class S2SOutStream:
    """The initiating side of one server stream from ``local`` to ``remote``."""

    def __init__(
        self, *, local: str, remote: str, is_tls_active: bool, limits: ParserLimits
    ) -> None:
        self.local = local
        self.remote = remote
        self.state = S.IDLE
        self.is_tls_active = is_tls_active
        self.is_authenticated = False
        self.is_bidi = False
        self.peer_stream_id = ""  # the id of the receiving server's header (dialback keys)
        self.end_condition: StreamCondition | None = None
        self._parser = StreamParser(limits)
        self._writer = ServerWriter(local=local)

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over."""
        return self.state is S.CLOSED

    def _step(self, inp: Input) -> bool:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            if inp in REMOTE_INPUTS:
                return False
            prev, self.state = self.state, S.CLOSED
            raise LocalProtocolError(f"{inp.value} is not allowed in state {prev.value}")
        self.state = nxt
        return True

    # -- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[S2SEvent]:
        """Feed bytes; returns the events they complete."""
        if self.state is S.CLOSED:
            return []
        try:
            items, error = self._parser.feed(data), None
        except RemoteProtocolError as err:
            items, error = err.completed, err
        events: list[S2SEvent] = []
        for item in items:
            ev: S2SEvent | None
            if isinstance(item, StreamOpened):
                ev = self._on_open(item.tag, item.attrs)
            elif isinstance(item, ElementReceived):
                ev = self._on_element(item.element)
            else:
                ev = self._on_close()
            if ev is not None:
                events.append(ev)
            if self.state in (S.CLOSED, S.TLS_HANDSHAKE):
                return events  # nothing after <proceed/> is read before TLS
        if error is not None:
            events.append(self._fail(error.condition, error.text))
        return events

    def _on_open(self, tag: str, attrs: dict[str, str]) -> S2SEvent:
        if tag != STREAM_ROOT:
            return self._fail(StreamCondition.INVALID_NAMESPACE, "wrong stream root element")
        if not self._step(In.OPEN):
            return self._fail(StreamCondition.INVALID_XML, "unexpected stream header")
        self.peer_stream_id = attrs.get("id", "")
        return StreamStarted(
            attrs.get("from", "").lower(), attrs.get("to", ""), self.peer_stream_id
        )

    def _on_close(self) -> S2SEvent:
        if self.state is not S.CLOSED:
            self._writer.closing()
            self.state = S.CLOSED
        return StreamEnded(is_by_peer=True)

    def _on_element(self, element: Element) -> S2SEvent | None:
        tag = element.tag
        if tag == f"{{{ns.STREAM}}}error":
            self.state = S.CLOSED
            cond = next((c.tag.split("}", 1)[-1] for c in element if "streams" in c.tag), "")
            try:
                condition: StreamCondition | None = StreamCondition(cond)
            except ValueError:
                condition = StreamCondition.UNDEFINED_CONDITION
            return StreamEnded(
                condition=condition, text="stream error from the peer", is_by_peer=True
            )
        inp = _ELEMENTS.get(tag) if isinstance(tag, str) else None
        if inp is None:
            inp = In.STANZA if tag in SERVER_STANZAS and self.is_bidi else In.OTHER
        if inp is In.STANZA:
            if not self._step(inp):
                return self._fail(StreamCondition.NOT_AUTHORIZED, "not established")
            return StanzaReceived(to_kernel(element))
        if not self._step(inp):
            return self._fail(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"{inp.value} unexpected")
        if inp is In.FEATURES:
            return read_features(element)
        if inp is In.PROCEED:
            return TlsProceed()
        if inp is In.SASL_SUCCESS:
            self.is_authenticated = True
            self._parser.reset()
            self._writer.header(to=self.remote, with_id=False)
            return SaslOutcome(is_success=True)
        if inp is In.SASL_FAILURE:
            cond = next((c.tag.split("}", 1)[-1] for c in element), "not-authorized")
            return SaslOutcome(is_success=False, condition=cond)
        return DialbackReceived(dialback.parse(element))

    # -- local decisions ------------------------------------------------------

    def start(self) -> None:
        """Send our stream header (after connecting, or the TLS handshake for direct TLS)."""
        self._step(In.START)
        self._writer.header(to=self.remote, with_id=False)

    def starttls(self) -> None:
        """Ask for TLS (RFC 6120 §5.4.2.1)."""
        self._step(In.STARTTLS)
        self._writer.raw(f"<starttls xmlns='{ns.TLS}'/>")

    def tls_established(self) -> None:
        """The handshake is done: a new stream (RFC 6120 §5.4.3.3)."""
        self._step(In.TLS_DONE)
        self.is_tls_active = True
        self._parser.reset()
        self._writer.header(to=self.remote, with_id=False)

    def request_bidi(self) -> None:
        """XEP-0288 §2: ask that the stream carry stanzas both ways."""
        if self.state is not S.NEGOTIATING or self.is_authenticated:
            raise LocalProtocolError("bidi is requested before authentication")
        self.is_bidi = True
        self._writer.raw(f"<bidi xmlns='{ns.BIDI}'/>")

    def authenticate_external(self) -> None:
        """SASL EXTERNAL with our domain as authorization identity (XEP-0178 §2)."""
        self._step(In.EXTERNAL)
        authzid = base64.b64encode(self.local.encode()).decode()
        self._writer.raw(f"<auth xmlns='{ns.SASL}' mechanism='{EXTERNAL}'>{authzid}</auth>")

    def authenticate_dialback(self, key: str) -> None:
        """Send our dialback key (XEP-0220 §2.1.1)."""
        self._step(In.DIALBACK)
        self._writer.nonza(dialback.result_request(from_=self.local, to=self.remote, key=key))

    def established(self) -> None:
        """The features of the authenticated stream were read: stanzas may flow."""
        if not self.is_authenticated:
            raise LocalProtocolError("not authenticated")
        self._step(In.DONE)

    def dialback_verified(self) -> None:
        """The peer answered our ``<db:result/>`` with valid (the driver read the event)."""
        self.is_authenticated = True

    def verify(self, *, stream_id: str, key: str, to: str | None = None) -> None:
        """Ask the peer (authoritative for ``to``) whether ``key`` is its (XEP-0220 §2.1.2)."""
        self._step(In.VERIFY)
        el = dialback.verify_request(
            from_=self.local, to=to or self.remote, stream_id=stream_id, key=key
        )
        self._writer.nonza(el)

    def send_element(self, element: Element) -> None:
        """Queue a stanza."""
        if self.state is S.CLOSED:
            return
        if self.state is not S.ESTABLISHED:
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.value}")
        self._writer.element(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream, with a stream error when ``condition`` is given."""
        if self.state is S.CLOSED:
            return
        if condition is not None:
            self._fail(condition, text)
            return
        if self._writer.is_header_sent:
            self._writer.closing()
        self.state = S.CLOSED

    def data_to_send(self) -> list[bytes]:
        """Take everything queued for writing."""
        return self._writer.take()

    def _fail(self, condition: StreamCondition, text: str = "") -> StreamEnded:
        if self.state is not S.CLOSED:
            self._writer.stream_error(stream_error_element(condition, text), to=self.remote)
            self.end_condition = condition
            self.state = S.CLOSED
        return StreamEnded(condition=condition, text=text)
