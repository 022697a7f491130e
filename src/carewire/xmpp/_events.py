"""What a client stream tells its driver: the events of :mod:`carewire.xmpp.stream` (private).

Events are frozen dataclasses, one per thing the driver has to act on; the
stream re-exports them. Nonzas (XEP-0198 stream management, XEP-0352 client
state) are named here too, with how each accepted one becomes an event; where
they are accepted is part of the stream's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.sasl2 import Authenticate

SM = "urn:xmpp:sm:3"  # XEP-0198
CSI = "urn:xmpp:csi:0"  # XEP-0352
MAX_SEQ = 2**32  # XEP-0198 §4: sequence numbers are unsigned 32-bit, wrapping to zero


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The client opened (or restarted) the stream; features were sent."""

    lang: str


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """``<proceed/>`` is queued: write it, then wrap the transport in TLS."""


@dataclass(frozen=True, slots=True)
class AuthRequested:
    """SASL ``<auth/>`` (or SASL2 ``<authenticate/>``, then ``sasl2`` says what else it asks)."""

    mechanism: str
    initial_response: bytes | None
    sasl2: Authenticate | None = None


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


def parse_seq(value: str | None) -> int | None:
    """An XEP-0198 'h' value (xs:unsignedInt), or None when missing or malformed."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    n = int(value)
    return n if n < MAX_SEQ else None


def _is_true(value: str | None) -> bool:
    return value in ("true", "1")  # xs:boolean


def nonza_event(nonza: Nonza, element: Element) -> Event:
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


# The nonza table of each set of namespaces, shared by every stream (one dict, not one per
# connection: an idle session's memory counts).
_NONZA_TABLES: dict[frozenset[str], dict[str, Nonza]] = {}


def nonzas_of(namespaces: frozenset[str]) -> dict[str, Nonza]:
    """The nonzas a stream accepting ``namespaces`` knows, by tag (one shared table)."""
    table = _NONZA_TABLES.get(namespaces)
    if table is None:
        table = _NONZA_TABLES[namespaces] = {
            tag: nonza
            for tag, nonza in NONZA_TAGS.items()
            if tag[1:].split("}", 1)[0] in namespaces
        }
    return table
