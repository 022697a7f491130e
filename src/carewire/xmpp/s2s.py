"""Receiving side of a server-to-server stream, sans-IO (RFC 6120, XEP-0178/0220/0288).

Theory of operation
-------------------
:class:`S2SInStream` is what :class:`~carewire.xmpp.stream.C2SStream` is for
clients, for a peer server that connected to us: bytes in, events out, our
decisions (TLS done, SASL EXTERNAL accepted, a dialback key verified) in,
bytes out. It never looks at certificates or keys itself.

Negotiation is the data table :data:`TRANSITIONS`; remote inputs missing from
it end the stream with the condition of :data:`REMOTE_REFUSALS` (default
``not-authorized``: nothing but negotiation is accepted before
authentication), local ones raise :class:`LocalProtocolError`.

    OPEN_PLAIN --open--> AWAIT_STARTTLS --starttls--> TLS_HANDSHAKE --tls done--> OPEN_TLS
    OPEN_TLS --open--> AWAIT_AUTH --auth--> SASL --success--> OPEN_AUTHED --open--> ESTABLISHED
    AWAIT_AUTH --db:result, then verified (dialback-ok)--> ESTABLISHED

``<db:verify/>`` (we are the authoritative server, XEP-0220 §2.1.2) is
answered in any state after TLS; ``<db:result/>`` may add domains to an
established stream (piggybacking, §2.5). Authenticated domains are kept in
:attr:`S2SInStream.domains`; the driver checks each stanza's ``from`` against them.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import dialback, ns
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
)
from carewire.xmpp.s2s_common import (
    EXTERNAL,
    SERVER_STANZAS,
    STREAM_ROOT,
    BidiRequested,
    DialbackReceived,
    ExternalAuthRequested,
    S2SEvent,
    ServerWriter,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    StreamStarted,
    to_kernel,
)


class State(StrEnum):
    """Negotiation states of a receiving server stream."""

    OPEN_PLAIN = "open-plain"
    AWAIT_STARTTLS = "await-starttls"
    TLS_HANDSHAKE = "tls-handshake"
    OPEN_TLS = "open-tls"
    AWAIT_AUTH = "await-auth"
    SASL = "sasl"  # the driver is deciding on SASL EXTERNAL
    OPEN_AUTHED = "open-authed"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(StrEnum):
    """Remote elements and local decisions."""

    OPEN = "open"
    STARTTLS = "starttls"
    AUTH = "auth"
    DB_RESULT = "db-result"
    DB_VERIFY = "db-verify"
    BIDI = "bidi"
    STANZA = "stanza"
    OTHER = "other"
    # local
    TLS_DONE = "tls-done"
    SUCCESS = "success"
    FAILURE = "failure"
    DIALBACK_OK = "dialback-ok"


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.OPEN_PLAIN, In.OPEN): S.AWAIT_STARTTLS,
    (S.AWAIT_STARTTLS, In.STARTTLS): S.TLS_HANDSHAKE,
    (S.TLS_HANDSHAKE, In.TLS_DONE): S.OPEN_TLS,
    (S.OPEN_TLS, In.OPEN): S.AWAIT_AUTH,
    (S.AWAIT_AUTH, In.AUTH): S.SASL,
    (S.AWAIT_AUTH, In.BIDI): S.AWAIT_AUTH,
    (S.AWAIT_AUTH, In.DB_RESULT): S.AWAIT_AUTH,
    (S.AWAIT_AUTH, In.DB_VERIFY): S.AWAIT_AUTH,
    (S.AWAIT_AUTH, In.DIALBACK_OK): S.ESTABLISHED,
    (S.SASL, In.SUCCESS): S.OPEN_AUTHED,
    # XEP-0178 §3: after a failure the peer may try dialback on the same stream.
    (S.SASL, In.FAILURE): S.AWAIT_AUTH,
    (S.OPEN_AUTHED, In.OPEN): S.ESTABLISHED,
    (S.ESTABLISHED, In.STANZA): S.ESTABLISHED,
    (S.ESTABLISHED, In.DB_RESULT): S.ESTABLISHED,
    (S.ESTABLISHED, In.DB_VERIFY): S.ESTABLISHED,
    (S.ESTABLISHED, In.DIALBACK_OK): S.ESTABLISHED,
}
LOCAL_INPUTS = frozenset({In.TLS_DONE, In.SUCCESS, In.FAILURE, In.DIALBACK_OK})
REMOTE_INPUTS = frozenset(Input) - LOCAL_INPUTS
REMOTE_REFUSALS: dict[State, StreamCondition] = {
    S.AWAIT_STARTTLS: StreamCondition.POLICY_VIOLATION,  # RFC 6120 §5.3.1: TLS is mandatory
    S.ESTABLISHED: StreamCondition.UNSUPPORTED_STANZA_TYPE,
}
_OPEN_STATES = frozenset({S.OPEN_PLAIN, S.OPEN_TLS, S.OPEN_AUTHED})
_ELEMENTS = {
    f"{{{ns.TLS}}}starttls": In.STARTTLS,
    f"{{{ns.SASL}}}auth": In.AUTH,
    dialback.RESULT: In.DB_RESULT,
    dialback.VERIFY: In.DB_VERIFY,
    f"{{{ns.BIDI}}}bidi": In.BIDI,
}


class S2SInStream:
    """The receiving side of one server stream.

    Args:
        domains_served: our domain and its sub-domains (a header's ``to`` must be one).
        is_tls_active: direct TLS (XEP-0368): the stream begins encrypted.
        limits: parser limits (the s2s stanza size).
    """

    def __init__(
        self, *, domains_served: frozenset[str], is_tls_active: bool, limits: ParserLimits
    ) -> None:
        self.domains_served = domains_served
        self.state = S.OPEN_TLS if is_tls_active else S.OPEN_PLAIN
        self.is_tls_active = is_tls_active
        self.peer = ""  # the header's 'from'
        self.local = ""  # the header's 'to' (which of our domains)
        self.domains: set[str] = set()  # authenticated peer domains
        self.is_bidi = False
        self.offer_external = False  # set by the driver once the peer's certificate is known
        self.offer_dialback = True
        self.end_condition: StreamCondition | None = None
        self._parser = StreamParser(limits)
        self._writer = ServerWriter(local="")

    @property
    def stream_id(self) -> str:
        """Our current stream id (dialback keys are bound to it)."""
        return self._writer.stream_id

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over."""
        return self.state is S.CLOSED

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
                return events  # nothing after <starttls/> is read before TLS
        if error is not None:
            events.append(self._fail(error.condition, error.text))
        return events

    def _step(self, inp: Input) -> bool:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            if inp in REMOTE_INPUTS:
                return False
            prev, self.state = self.state, S.CLOSED
            raise LocalProtocolError(f"{inp.value} is not allowed in state {prev.value}")
        self.state = nxt
        return True

    def _on_open(self, tag: str, attrs: dict[str, str]) -> S2SEvent:
        if self.state not in _OPEN_STATES:
            return self._fail(StreamCondition.INVALID_XML, "unexpected stream header")
        if tag != STREAM_ROOT:
            return self._fail(StreamCondition.INVALID_NAMESPACE, "wrong stream root element")
        to = (attrs.get("to") or "").lower().rstrip(".")
        self.local = self._writer.local = to if to in self.domains_served else self.local
        if to not in self.domains_served:
            # RFC 6120 §4.9.3.6: a 'to' we do not serve.
            return self._fail(
                StreamCondition.HOST_UNKNOWN, "this server does not serve that domain"
            )
        self.peer = (attrs.get("from") or "").lower().rstrip(".")
        if not attrs.get("version", "").startswith("1."):
            return self._fail(StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 is required")
        self._writer.header(to=self.peer or None, with_id=True)
        self._step(In.OPEN)
        if self.state is not S.AWAIT_AUTH:
            self._writer.features(self._features())
        # Before authentication the offer depends on who the peer says it is: the
        # driver decides and calls send_auth_features().
        return StreamStarted(self.peer, to, self.stream_id)

    def _features(self) -> list[Element]:
        if self.state is S.AWAIT_STARTTLS:
            tls = Element(f"{{{ns.TLS}}}starttls")
            SubElement(tls, f"{{{ns.TLS}}}required")
            return [tls]
        if self.state is S.AWAIT_AUTH:
            out: list[Element] = []
            if self.offer_external:
                mechs = Element(f"{{{ns.SASL}}}mechanisms")
                SubElement(mechs, f"{{{ns.SASL}}}mechanism").text = EXTERNAL
                out.append(mechs)
            if self.offer_dialback:
                db = Element(f"{{{ns.DIALBACK_FEATURE}}}dialback")
                SubElement(db, f"{{{ns.DIALBACK_FEATURE}}}errors")
                out.append(db)
            out.append(Element(f"{{{ns.BIDI_FEATURE}}}bidi"))
            return out
        return []

    def _on_close(self) -> S2SEvent:
        if self.state is not S.CLOSED:
            if self._writer.is_header_sent:
                self._writer.closing()
            self.state = S.CLOSED
        return StreamEnded(is_by_peer=True)

    def _on_element(self, element: Element) -> S2SEvent | None:
        if self.state in _OPEN_STATES:
            return self._fail(StreamCondition.NOT_AUTHORIZED, "stream header expected first")
        tag = element.tag
        inp = _ELEMENTS.get(tag) if isinstance(tag, str) else None
        if inp is None:
            inp = In.STANZA if tag in SERVER_STANZAS else In.OTHER
        if inp is In.DB_RESULT and not self.offer_dialback:
            return self._fail(StreamCondition.NOT_AUTHORIZED, "dialback is not accepted here")
        if not self._step(inp):
            cond = REMOTE_REFUSALS.get(self.state, StreamCondition.NOT_AUTHORIZED)
            return self._fail(cond, f"{inp.value} is not allowed now")
        if inp is In.STANZA:
            return StanzaReceived(to_kernel(element))
        if inp is In.STARTTLS:
            self._writer.raw(f"<proceed xmlns='{ns.TLS}'/>")
            return StartTlsRequested()
        if inp is In.AUTH:
            return self._on_auth(element)
        if inp is In.BIDI:
            self.is_bidi = True
            return BidiRequested()
        return DialbackReceived(dialback.parse(element))

    def _on_auth(self, element: Element) -> S2SEvent | None:
        if element.get("mechanism") != EXTERNAL or not self.offer_external:
            self.state = S.AWAIT_AUTH
            self._sasl_failure("invalid-mechanism")
            return None
        text = (element.text or "").strip()
        try:
            authzid = "" if text in ("", "=") else base64.b64decode(text, validate=True).decode()
        except (binascii.Error, ValueError):
            self.state = S.AWAIT_AUTH
            self._sasl_failure("incorrect-encoding")
            return None
        return ExternalAuthRequested(authzid.lower())

    # -- local decisions ------------------------------------------------------

    def tls_established(self) -> None:
        """The transport now speaks TLS: a new stream begins (RFC 6120 §5.4.3.3)."""
        self._step(In.TLS_DONE)
        self.is_tls_active = True
        self._restart()

    def send_auth_features(self, *, external: bool, dialback: bool) -> None:
        """Features of the encrypted stream: EXTERNAL when the certificate will do (XEP-0178)."""
        if self.state is not S.AWAIT_AUTH:
            raise LocalProtocolError(f"no authentication features in state {self.state.value}")
        self.offer_external, self.offer_dialback = external, dialback
        self._writer.features(self._features())

    def sasl_success(self, domain: str) -> None:
        """SASL EXTERNAL accepted for ``domain`` (XEP-0178 §2): success, then a new stream."""
        self._step(In.SUCCESS)
        self._writer.raw(f"<success xmlns='{ns.SASL}'/>")
        self.domains.add(domain)
        self._restart()

    def sasl_failure(self, condition: str = "not-authorized") -> None:
        """SASL EXTERNAL refused (the peer may fall back to dialback)."""
        self._step(In.FAILURE)
        self._sasl_failure(condition)

    def dialback_valid(self, request: dialback.DialbackElement) -> None:
        """The authoritative server vouched for ``request.from_``: stanzas from it are accepted."""
        self._step(In.DIALBACK_OK)
        self.domains.add(request.from_)
        self._writer.nonza(dialback.answer(request, is_valid=True))

    def dialback_refused(self, request: dialback.DialbackElement, condition: str) -> None:
        """Refuse a dialback request with an error (XEP-0220 §2.4): policy, unknown host."""
        self._writer.nonza(dialback.error(request, condition))

    def send_nonza(self, element: Element) -> None:
        """Queue a negotiation element (a ``<db:verify/>`` answer, an invalid ``<db:result/>``)."""
        if self.state is not S.CLOSED:
            self._writer.nonza(element)

    def send_element(self, element: Element) -> None:
        """Queue a stanza on a bidirectional stream (XEP-0288)."""
        if self.state is S.CLOSED:
            return
        if self.state is not S.ESTABLISHED or not self.is_bidi:
            raise LocalProtocolError("stanzas go out on this stream only when it is bidirectional")
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

    def _restart(self) -> None:
        self._parser.reset()
        self._writer.is_header_sent = False

    def _sasl_failure(self, condition: str) -> None:
        self._writer.raw(f"<failure xmlns='{ns.SASL}'><{condition}/></failure>")

    def _fail(self, condition: StreamCondition, text: str = "") -> StreamEnded:
        if self.state is not S.CLOSED:
            self._writer.stream_error(stream_error_element(condition, text), to=self.peer or None)
            self.end_condition = condition
            self.state = S.CLOSED
        return StreamEnded(condition=condition, text=text)
