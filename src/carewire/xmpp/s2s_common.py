"""What both directions of a server-to-server stream share (RFC 6120 §4, ``jabber:server``).

The events both machines emit, the namespace translation between the wire
(``jabber:server``) and the kernel (which knows stanzas as ``jabber:client``),
and the writer of one direction of a server stream.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from carewire.xmpp import ns
from carewire.xmpp.dialback import DialbackElement
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.xml import serialize, stream_header

STREAM_ROOT = f"{{{ns.STREAM}}}stream"
SERVER_STANZAS = frozenset({f"{{{ns.SERVER}}}{k}" for k in ("message", "presence", "iq")})
_SERVER_PREFIX = f"{{{ns.SERVER}}}"
_CLIENT_PREFIX = f"{{{ns.CLIENT}}}"
EXTERNAL = "EXTERNAL"


def to_kernel(element: Element) -> Element:
    """Rename ``jabber:server`` elements to ``jabber:client`` in place (RFC 6120 §4.8.3)."""
    for el in element.iter():
        tag = el.tag
        if isinstance(tag, str) and tag.startswith(_SERVER_PREFIX):
            el.tag = _CLIENT_PREFIX + tag[len(_SERVER_PREFIX) :]
    return element


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The peer's stream header: who it says it is and whom it addresses."""

    from_: str
    to: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """Receiving side: the peer sent ``<starttls/>``; ``<proceed/>`` is queued."""


@dataclass(frozen=True, slots=True)
class ExternalAuthRequested:
    """Receiving side: SASL EXTERNAL (XEP-0178) for ``authzid`` ('' means the header's from)."""

    authzid: str


@dataclass(frozen=True, slots=True)
class DialbackReceived:
    """A dialback request or answer (XEP-0220)."""

    dialback: DialbackElement


@dataclass(frozen=True, slots=True)
class BidiRequested:
    """Receiving side: the peer asked for a bidirectional stream (XEP-0288)."""


@dataclass(frozen=True, slots=True)
class FeaturesReceived:
    """Initiating side: the receiving server's features."""

    has_starttls: bool
    mechanisms: tuple[str, ...]
    has_dialback: bool
    has_bidi: bool


@dataclass(frozen=True, slots=True)
class TlsProceed:
    """Initiating side: ``<proceed/>``: start the TLS handshake now."""


@dataclass(frozen=True, slots=True)
class SaslOutcome:
    """Initiating side: the answer to our SASL EXTERNAL."""

    is_success: bool
    condition: str = ""


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    """A stanza, already in the kernel's ``jabber:client`` namespace."""

    element: Element


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream is over: the peer closed it, or we sent a stream error (``condition``)."""

    condition: StreamCondition | None = None
    text: str = ""
    is_by_peer: bool = False


S2SEvent = (
    StreamStarted
    | StartTlsRequested
    | ExternalAuthRequested
    | DialbackReceived
    | BidiRequested
    | FeaturesReceived
    | TlsProceed
    | SaslOutcome
    | StanzaReceived
    | StreamEnded
)


class ServerWriter:
    """Renders one direction of a server stream and queues it as bytes."""

    def __init__(self, *, local: str) -> None:
        self.local = local
        self.stream_id = ""
        self.is_header_sent = False
        self._out: list[bytes] = []

    def take(self) -> list[bytes]:
        """Everything queued since the last call."""
        out, self._out = self._out, []
        return out

    def raw(self, text: str) -> None:
        """Queue hand-written XML."""
        self._out.append(text.encode("utf-8"))

    def header(self, *, to: str | None, with_id: bool) -> None:
        """Our stream header with the dialback prefix declared (XEP-0220 §2.1.1)."""
        self.stream_id = secrets.token_urlsafe(12) if with_id else ""
        head = stream_header(
            from_=self.local or None, to=to, stream_id=self.stream_id or None, content_ns=ns.SERVER
        )
        self.raw(head[:-1] + f" xmlns:db='{ns.DIALBACK}'>")
        self.is_header_sent = True

    def features(self, elements: Iterable[Element]) -> None:
        """``<stream:features/>``."""
        inner = "".join(serialize(e, ns.STREAM) for e in elements)
        self.raw(f"<stream:features>{inner}</stream:features>")

    def element(self, element: Element) -> None:
        """A stanza (kernel namespace: its ``jabber:client`` tags inherit ``jabber:server``)."""
        self.raw(serialize(element, ns.CLIENT))

    def nonza(self, element: Element) -> None:
        """A negotiation element in its own namespace (dialback, SASL, TLS, bidi)."""
        self.raw(serialize(element, ns.SERVER))

    def closing(self) -> None:
        """``</stream:stream>``."""
        self.raw("</stream:stream>")

    def stream_error(self, element: Element, *, to: str | None) -> None:
        """A stream error and the end of the stream (RFC 6120 §4.9.1.1)."""
        if not self.is_header_sent:
            self.header(to=to, with_id=True)
        text = serialize(element, ns.STREAM)
        inner = text[text.index(">") + 1 : text.rindex("<")]
        self.raw(f"<stream:error>{inner}</stream:error></stream:stream>")
