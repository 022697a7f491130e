"""What a client stream puts on the wire: RFC 6120 TCP vs RFC 7395 WebSocket framing (private).

Theory of operation
-------------------
The negotiation of :mod:`carewire.xmpp.stream` is the same whatever carries
the stream; only the framing around the elements differs, and this module
holds that difference:

==================  =========================================  ===============================
                    TCP (RFC 6120 §4)                          WebSocket (RFC 7395 §3)
==================  =========================================  ===============================
input               one XML document, parsed incrementally     one document per message
stream header       the ``<stream:stream>`` open tag           ``<open/>``
end of the stream   ``</stream:stream>``                       ``<close/>``
stanzas             inherit ``jabber:client`` from the header  declare their namespace
stream error        after our header (sent first if needed);   its own message, then
                    the document ends with it                  ``<close/>``
==================  =========================================  ===============================

:class:`Reader` turns input into the items of the TCP parser (a WebSocket
message becomes the item the parser would have produced) and judges the
client's stream header. :class:`Writer` renders everything the server sends
on one stream (headers, features, SASL and TLS replies, stanzas, stream
errors) and queues it as bytes: one item per WebSocket message. The remaining
helpers build the negotiation features, encode SASL data (RFC 6120 §6.4.2)
and escape text for hand-written XML.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns, sasl2
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition
from carewire.xmpp.parser import (
    ElementReceived,
    ParserEvent,
    ParserLimits,
    StreamClosed,
    StreamOpened,
    StreamParser,
    parse_document,
)
from carewire.xmpp.xml import framing_close, framing_open, serialize, stream_header


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
    # XEP-0388: what <authentication/> offers; None: SASL2 is neither offered nor accepted.
    sasl2_offer: sasl2.Offer | None = None


STREAM_ROOT = f"{{{ns.STREAM}}}stream"
FRAMING_OPEN = f"{{{ns.FRAMING}}}open"
FRAMING_CLOSE = f"{{{ns.FRAMING}}}close"
BIND = f"{{{ns.BIND}}}bind"


def message_item(element: Element) -> ParserEvent:
    """What one WebSocket message is to the stream (RFC 7395 §3.3): open, close or element."""
    if element.tag == FRAMING_OPEN:
        return StreamOpened(element.tag, dict(element.attrib))
    if element.tag == FRAMING_CLOSE:
        return StreamClosed()
    return ElementReceived(element)


class Reader:
    """Turns the client's TCP bytes or WebSocket messages into parser items."""

    def __init__(self, *, domain: str, limits: ParserLimits, is_websocket: bool) -> None:
        self.domain = domain
        self.limits = limits
        # The stream root the client must open with.
        self.root_tag = FRAMING_OPEN if is_websocket else STREAM_ROOT
        self._parser = StreamParser(limits)

    def feed(self, data: bytes) -> tuple[list[ParserEvent], RemoteProtocolError | None]:
        """The items TCP bytes complete, and the error that stopped parsing (if any)."""
        try:
            return self._parser.feed(data), None
        except RemoteProtocolError as err:
            return err.completed, err

    def message(self, message: bytes | str) -> ParserEvent:
        """The item of one WebSocket message.

        Raises:
            RemoteProtocolError: the message is not one well-formed element.
        """
        return message_item(parse_document(message, self.limits))

    def reset(self) -> None:
        """A new stream begins on the same TCP connection (after TLS or SASL)."""
        self._parser.reset()

    def compact(self) -> bool:
        """Free the parser's buffers while the stream is idle between stanzas (see
        :meth:`StreamParser.compact`); True if done."""
        return self._parser.compact()

    def header_refusal(self, tag: str, attrs: dict[str, str]) -> tuple[StreamCondition, str] | None:
        """Why the client's stream header is refused (RFC 6120 §4.7, §4.9.3), or None."""
        if tag != self.root_tag:
            return StreamCondition.INVALID_NAMESPACE, "wrong stream root element"
        version = attrs.get("version", "0.9")
        try:
            major = int(version.split(".", 1)[0])
        except ValueError:
            major = 0
        if major < 1:
            return StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 is required"
        to = attrs.get("to")
        if to is not None and to.lower().rstrip(".") != self.domain:
            return StreamCondition.HOST_UNKNOWN, "this server does not serve that domain"
        return None


class Writer:
    """Renders the server's side of one stream and queues it as bytes."""

    def __init__(self, *, domain: str, is_websocket: bool) -> None:
        self.domain = domain
        self.is_websocket = is_websocket
        # Stanzas inherit jabber:client from the TCP header; a WebSocket message stands alone.
        self.stanza_parent = None if is_websocket else ns.CLIENT
        self.stream_id = ""
        self.is_header_sent = False
        self._out: list[bytes] = []

    def take(self) -> list[bytes]:
        """Everything queued since the last call (one item per WebSocket message)."""
        out, self._out = self._out, []
        return out

    @property
    def has_document(self) -> bool:
        """Whether a closing tag has something to close (on TCP, only our header)."""
        return self.is_header_sent or self.is_websocket

    def restart(self) -> None:
        """A new stream begins (after TLS or SASL): the next header is a new one."""
        self.is_header_sent = False

    def raw(self, text: str) -> None:
        """Queue hand-written XML (a top-level element in its own namespace)."""
        self._out.append(text.encode("utf-8"))

    def header(self) -> None:
        """Our stream header, with a new stream id (RFC 6120 §4.7.3)."""
        self.stream_id = secrets.token_urlsafe(12)
        if self.is_websocket:
            self.raw(framing_open(from_=self.domain, stream_id=self.stream_id))
        else:
            self.raw(stream_header(from_=self.domain, to=None, stream_id=self.stream_id))
        self.is_header_sent = True

    def features(self, elements: Iterable[Element]) -> None:
        """``<stream:features/>`` (RFC 6120 §4.3.2)."""
        inner = "".join(serialize(e, ns.STREAM) for e in elements)
        decl = f" xmlns:stream='{ns.STREAM}'" if self.is_websocket else ""
        self.raw(f"<stream:features{decl}>{inner}</stream:features>")

    def element(self, element: Element) -> None:
        """Queue a stanza or nonza."""
        self.raw(serialize(element, self.stanza_parent))

    def closing(self) -> None:
        """The end of our stream: ``</stream:stream>`` or ``<close/>``."""
        self.raw(framing_close() if self.is_websocket else "</stream:stream>")

    def stream_error(self, element: Element) -> None:
        """A ``<stream:error/>`` and the end of the stream (RFC 6120 §4.9.1.1)."""
        if not self.is_header_sent and not self.is_websocket:
            self.header()  # §4.9.1.2: the header comes first
        inner = _inner(serialize(element, ns.STREAM))
        if self.is_websocket:
            self.raw(f"<stream:error xmlns:stream='{ns.STREAM}'>{inner}</stream:error>")
            self.raw(framing_close())
        else:
            self.raw(f"<stream:error>{inner}</stream:error></stream:stream>")

    def proceed(self) -> None:
        """RFC 6120 §5.4.2.3: go ahead with the TLS handshake."""
        self.raw(f"<proceed xmlns='{ns.TLS}'/>")

    def sasl_challenge(self, data: bytes) -> None:
        """A SASL ``<challenge/>`` (RFC 6120 §6.4.2)."""
        self.raw(f"<challenge xmlns='{ns.SASL}'>{encode_sasl(data)}</challenge>")

    def sasl_success(self, data: bytes | None) -> None:
        """SASL ``<success/>``, with additional data when there is any (§6.4.6)."""
        body = encode_sasl(data) if data else ""
        self.raw(f"<success xmlns='{ns.SASL}'>{body}</success>")

    def sasl_failure(self, condition: str, text: str) -> None:
        """SASL ``<failure/>`` with its condition and optional text (§6.5)."""
        t = f"<text xml:lang='en'>{escape(text)}</text>" if text else ""
        self.raw(f"<failure xmlns='{ns.SASL}'><{condition}/>{t}</failure>")

    def bind_result(self, iq_id: str, full_jid: str) -> None:
        """The result of resource binding (RFC 6120 §7.6.1)."""
        iq = Element(f"{{{ns.CLIENT}}}iq", {"type": "result", "id": iq_id})
        SubElement(SubElement(iq, BIND), f"{{{ns.BIND}}}jid").text = full_jid
        self.element(iq)

    def bind_error(self, iq_id: str, condition: str, error_type: str) -> None:
        """A stanza error for resource binding (RFC 6120 §7.6.2)."""
        iq = Element(f"{{{ns.CLIENT}}}iq", {"type": "error", "id": iq_id})
        err = SubElement(iq, f"{{{ns.CLIENT}}}error", {"type": error_type})
        SubElement(err, f"{{{ns.STANZAS_ERR}}}{condition}")
        self.element(iq)


def starttls_features() -> list[Element]:
    """What a plaintext stream offers: mandatory STARTTLS (RFC 6120 §5.3.1)."""
    tls = Element(f"{{{ns.TLS}}}starttls")
    SubElement(tls, f"{{{ns.TLS}}}required")
    return [tls]


def sasl_features(mechanisms: Iterable[str], extra: Iterable[Element]) -> list[Element]:
    """What an encrypted stream offers before authentication (RFC 6120 §6.4.1)."""
    mechs = Element(f"{{{ns.SASL}}}mechanisms")
    for m in mechanisms:
        SubElement(mechs, f"{{{ns.SASL}}}mechanism").text = m
    return [mechs, *extra]


def bind_features(extra: Iterable[Element]) -> list[Element]:
    """What an authenticated stream offers: binding (RFC 6120 §7.2), then the features'."""
    # RFC 6121 legacy session establishment, optional (RFC 3921 compat for old clients).
    session = Element(f"{{{ns.SESSION}}}session")
    SubElement(session, f"{{{ns.SESSION}}}optional")
    return [Element(BIND), session, *extra]


def decode_sasl(text: str | None) -> bytes | None:
    """RFC 6120 §6.4.2: '=' is an empty response; otherwise strict base64 (None: invalid)."""
    text = (text or "").strip()
    if text in ("", "="):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_sasl(data: bytes) -> str:
    """SASL data in base64; '=' for an empty one (RFC 6120 §6.4.2)."""
    return base64.b64encode(data).decode("ascii") if data else "="


def _inner(serialized: str) -> str:
    """The children of a serialised element (strip its own start and end tags)."""
    start = serialized.index(">") + 1
    end = serialized.rindex("<")
    return serialized[start:end]


def escape(text: str) -> str:
    """Escape character data for hand-written XML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """Escape an attribute value for hand-written XML (either quote)."""
    return escape(text).replace("'", "&apos;").replace('"', "&quot;")
