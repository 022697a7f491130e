"""Server side of an external component's stream as a sans-IO state machine (XEP-0114).

Theory of operation
-------------------
A gateway attaches to the server as a domain of its own (``gateway.DOMAIN``)
over one plain TCP stream in the ``jabber:component:accept`` namespace. The
component opens the stream with ``to`` naming its domain; we answer with our
header, whose ``id`` the component hashes with the shared secret and sends
back as ``<handshake/>``; an empty ``<handshake/>`` from us accepts it
(XEP-0114 §3). From then on both sides exchange stanzas.

:class:`ComponentStream` turns bytes into events and the caller's decisions
into bytes. It owns the parser and the negotiation state, and knows which
domains may attach (plain data in :class:`ComponentStreamConfig`) but never
the secrets: the driver checks a :class:`HandshakeReceived` digest with
:func:`is_valid_handshake` and answers with :meth:`ComponentStream.accept` or
:meth:`ComponentStream.close`.

Negotiation is the data table :data:`TRANSITIONS`. Remote inputs missing from
it are the peer's fault: the stream error of :data:`REMOTE_REFUSALS`
(``not-authorized`` by default: nothing but the handshake is accepted before
it succeeds), then ``CLOSED``. Local inputs missing from it raise
:class:`LocalProtocolError` and also end in ``CLOSED``.

    AWAIT_OPEN --open--> AWAIT_HANDSHAKE --handshake--> VERIFYING --accept--> ESTABLISHED

Stanzas pipelined behind the handshake are handed on in order while
``VERIFYING``; the driver acts on them only once it has accepted.

Stanzas arrive in ``jabber:component:accept`` and are handed on in
``jabber:client``, the namespace the kernel routes; stanzas we send are
written in the stream's default namespace, so the component reads them in
its own. Every stanza's ``from`` must be the component's domain or a JID in
it (a missing ``from`` means the domain itself); anything else ends the
stream with ``invalid-from``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.xmpp import ns
from carewire.xmpp._events import StanzaReceived, StreamEnded
from carewire.xmpp.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StreamCondition,
    stream_error_element,
)
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import (
    ElementReceived,
    ParserEvent,
    ParserLimits,
    StreamOpened,
    StreamParser,
)
from carewire.xmpp.xml import serialize, stream_header

__all__ = [
    "HANDSHAKE",
    "REMOTE_REFUSALS",
    "TRANSITIONS",
    "ComponentEvent",
    "ComponentOpened",
    "ComponentStream",
    "ComponentStreamConfig",
    "HandshakeReceived",
    "Input",
    "StanzaReceived",
    "State",
    "StreamEnded",
    "handshake_digest",
    "is_valid_handshake",
]

HANDSHAKE = f"{{{ns.COMPONENT}}}handshake"
_STREAM_ROOT = f"{{{ns.STREAM}}}stream"
_PREFIX = f"{{{ns.COMPONENT}}}"
_CLIENT_PREFIX = f"{{{ns.CLIENT}}}"
_STANZAS = frozenset({f"{_PREFIX}message", f"{_PREFIX}presence", f"{_PREFIX}iq"})


class State(StrEnum):
    """Negotiation states of a server-side component stream."""

    AWAIT_OPEN = "await-open"  # waiting for the component's stream header
    AWAIT_HANDSHAKE = "await-handshake"
    VERIFYING = "verifying"  # the driver is checking the handshake
    ESTABLISHED = "established"
    CLOSED = "closed"


class Input(StrEnum):
    """Everything that can move the machine: remote elements and local decisions."""

    OPEN = "open"
    HANDSHAKE = "handshake"
    STANZA = "stanza"
    OTHER = "other"  # any other top-level element
    # local
    ACCEPT = "accept"


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.AWAIT_OPEN, In.OPEN): S.AWAIT_HANDSHAKE,
    (S.AWAIT_HANDSHAKE, In.HANDSHAKE): S.VERIFYING,
    # Pipelined behind the handshake: handed on in order, acted on once accepted.
    (S.VERIFYING, In.STANZA): S.VERIFYING,
    (S.VERIFYING, In.ACCEPT): S.ESTABLISHED,
    (S.ESTABLISHED, In.STANZA): S.ESTABLISHED,
}
LOCAL_INPUTS = frozenset({In.ACCEPT})
REMOTE_INPUTS = frozenset(Input) - LOCAL_INPUTS
# The stream error for a remote input the table does not allow; not-authorized otherwise.
REMOTE_REFUSALS: dict[tuple[State, Input], StreamCondition] = {
    (S.VERIFYING, In.HANDSHAKE): StreamCondition.POLICY_VIOLATION,
    (S.ESTABLISHED, In.HANDSHAKE): StreamCondition.POLICY_VIOLATION,
    (S.ESTABLISHED, In.OTHER): StreamCondition.UNSUPPORTED_STANZA_TYPE,
}


@dataclass(frozen=True, slots=True)
class ComponentOpened:
    """The component opened its stream for ``domain`` (a configured one); our header is queued."""

    domain: str


@dataclass(frozen=True, slots=True)
class HandshakeReceived:
    """The component's ``<handshake/>``: check ``digest``, then accept or close."""

    digest: str


ComponentEvent = ComponentOpened | HandshakeReceived | StanzaReceived | StreamEnded


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentStreamConfig:
    """What the machine accepts; decided by the server, fixed per connection."""

    domains: frozenset[str]  # the component domains that may attach (lowercase)
    limits: ParserLimits = field(default_factory=ParserLimits)


def handshake_digest(stream_id: str, secret: str) -> str:
    """XEP-0114 §3: lowercase hex SHA-1 of the stream id followed by the secret (UTF-8)."""
    return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()


def is_valid_handshake(stream_id: str, secret: str, digest: str) -> bool:
    """Whether ``digest`` proves knowledge of ``secret`` for this stream (constant time)."""
    expected = handshake_digest(stream_id, secret).encode("ascii")
    given = digest.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def _to_client_namespace(element: Element) -> Element:
    """Rename the stanza and its children from ``jabber:component:accept`` to ``jabber:client``."""
    for el in element.iter():
        tag = el.tag
        if isinstance(tag, str) and tag.startswith(_PREFIX):
            el.tag = _CLIENT_PREFIX + tag[len(_PREFIX) :]
    return element


class ComponentStream:
    """The server side of one external component's stream."""

    def __init__(self, config: ComponentStreamConfig) -> None:
        self.config = config
        self.state = S.AWAIT_OPEN
        self.domain = ""  # the domain the component asked for (known once the header is read)
        self.stream_id = ""
        # How the stream ended: the component's closing tag, or the condition of our stream error.
        self.is_closed_by_peer = False
        self.end_condition: StreamCondition | None = None
        self._parser = StreamParser(config.limits)
        self._out: list[bytes] = []
        self._is_header_sent = False

    # -- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ComponentEvent]:
        """Feed bytes of the TCP stream; returns the events they complete."""
        if self.state is S.CLOSED:
            return []
        try:
            parsed, error = self._parser.feed(data), None
        except RemoteProtocolError as err:
            parsed, error = err.completed, err
        events: list[ComponentEvent] = []
        for item in parsed:
            events.append(self._on_item(item))
            if self.is_closed:  # nothing after the end (or a refusal) is read
                return events
        if error is not None:
            events.append(self._fail(error.condition, error.text))
        return events

    def _on_item(self, item: ParserEvent) -> ComponentEvent:
        if isinstance(item, StreamOpened):
            return self._on_open(item.tag, item.attrs)
        if isinstance(item, ElementReceived):
            return self._on_element(item.element)
        # RFC 6120 §4.4: answer the closing tag with ours and end.
        if self._is_header_sent:
            self._raw("</stream:stream>")
        self.state = S.CLOSED
        self.is_closed_by_peer = True
        return StreamEnded()

    def _step(self, inp: Input) -> State | None:
        """Apply the transition table; None if a remote input is not allowed now."""
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            if inp in REMOTE_INPUTS:
                return None
            prev = self.state
            self.state = S.CLOSED
            raise LocalProtocolError(f"{inp.value} is not allowed in state {prev.value}")
        self.state = nxt
        return nxt

    def _on_open(self, tag: str, attrs: dict[str, str]) -> ComponentEvent:
        if tag != _STREAM_ROOT:
            return self._fail(StreamCondition.INVALID_NAMESPACE, "wrong stream root element")
        # XEP-0114 §3: the component's header names the domain it serves in 'to'.
        domain = attrs.get("to", "").strip().lower().rstrip(".")
        self.domain = domain
        if not domain:
            return self._fail(StreamCondition.IMPROPER_ADDRESSING, "'to' names the component")
        if domain not in self.config.domains:
            return self._fail(StreamCondition.HOST_UNKNOWN, "no component is configured for it")
        self._step(In.OPEN)
        self._header()
        return ComponentOpened(domain)

    def _classify(self, element: Element) -> Input:
        if element.tag == HANDSHAKE:
            return In.HANDSHAKE
        if element.tag in _STANZAS:
            return In.STANZA
        return In.OTHER

    def _on_element(self, element: Element) -> ComponentEvent:
        inp = self._classify(element)
        if self._step(inp) is None:
            cond = REMOTE_REFUSALS.get((self.state, inp), StreamCondition.NOT_AUTHORIZED)
            return self._fail(cond, f"{inp.value} is not allowed now")
        if inp is In.HANDSHAKE:
            return HandshakeReceived((element.text or "").strip())
        return self._on_stanza(_to_client_namespace(element))

    def _on_stanza(self, stanza: Element) -> ComponentEvent:
        sender = stanza.get("from")
        if sender is None:
            stanza.set("from", self.domain)  # the component speaks for its domain
            return StanzaReceived(stanza)
        try:
            jid = JID.parse(sender)
        except InvalidJID:
            return self._fail(StreamCondition.INVALID_FROM, "'from' is not a valid JID")
        if jid.domain != self.domain:
            return self._fail(StreamCondition.INVALID_FROM, f"'from' must be in {self.domain}")
        return StanzaReceived(stanza)

    # -- local decisions ------------------------------------------------------

    def accept(self) -> None:
        """The handshake is right: send the empty ``<handshake/>`` (XEP-0114 §3)."""
        self._step(In.ACCEPT)
        self._raw("<handshake/>")

    def send_element(self, element: Element) -> None:
        """Queue a stanza for the component (in its default namespace)."""
        if self.state is not S.ESTABLISHED:
            if self.state is S.CLOSED:
                return
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.value}")
        self._raw(serialize(element, ns.CLIENT))

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream, with a stream error when ``condition`` is given."""
        if self.state is S.CLOSED:
            return
        if condition is not None:
            self._fail(condition, text)
            return
        if self._is_header_sent:
            self._raw("</stream:stream>")
        self.state = S.CLOSED

    def data_to_send(self) -> list[bytes]:
        """Take everything queued for writing."""
        out, self._out = self._out, []
        return out

    @property
    def is_established(self) -> bool:
        """Whether the handshake was accepted and the stream is open."""
        return self.state is S.ESTABLISHED

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over."""
        return self.state is S.CLOSED

    # -- output helpers -------------------------------------------------------

    def _raw(self, text: str) -> None:
        self._out.append(text.encode("utf-8"))

    def _header(self) -> None:
        """Our header (XEP-0114 §3): the component's domain, a fresh id, no version."""
        self.stream_id = secrets.token_hex(16)
        self._raw(
            stream_header(
                # A refused domain is not ours to speak for.
                from_=self.domain if self.domain in self.config.domains else None,
                to=None,
                stream_id=self.stream_id,
                version=None,
                content_ns=ns.COMPONENT,
            )
        )
        self._is_header_sent = True

    def _fail(self, condition: StreamCondition, text: str = "") -> StreamEnded:
        """Send a stream error and close (RFC 6120 §4.9.1.1: our header first)."""
        if self.state is not S.CLOSED:
            if not self._is_header_sent:
                self._header()
            inner = serialize(stream_error_element(condition, text), ns.STREAM)
            body = inner[inner.index(">") + 1 : inner.rindex("<")]
            self._raw(f"<stream:error>{body}</stream:error></stream:stream>")
            self.end_condition = condition
            self.state = S.CLOSED
        return StreamEnded(condition=condition, text=text)
