"""Per-session clinical presence state, and the sink of virtual sessions.

A *virtual session* is a :class:`~carewire.core.sessions.Session` the server
keeps for a user without a client, so contacts see the presence an
administrator or a rule set. Its sink discards what is written to it,
answers IQ requests with ``service-unavailable`` (nobody would ever answer
them), and asks the feature to end the session when another feature closes
it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core.router import Router
from carewire.core.sessions import Session
from carewire.features.clinical_presence.model import DeviceInfo, ResourcePresence
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.stanza import IQ

#: session.data key of the device a client registered (shared with other features).
DEVICE_KEY: Final = "device"
#: session.data key of this feature's per-session state.
STATE_KEY: Final = "clinical_presence"
#: transport and resource of virtual sessions.
VIRTUAL: Final = "virtual"


@dataclass(slots=True, kw_only=True)
class SessionState:
    """What the feature remembers about one session.

    Attributes:
        presence: The session's last broadcast presence.
        last_activity: When the client last sent a message, presence or IQ request.
        closed_by: Who is ending the session (it no longer counts for the aggregate).
        is_unregistered: The client unregistered its device (or confirmed its wipe).
        active_recorded_at: When DEVICES.last_active_at was last written for it.
    """

    presence: ResourcePresence
    last_activity: datetime
    closed_by: str | None = None
    is_unregistered: bool = False
    active_recorded_at: datetime | None = None


def is_virtual(session: Session) -> bool:
    """Whether ``session`` is a virtual session."""
    return session.transport == VIRTUAL


def device_of(session: Session) -> DeviceInfo:
    """The device the session registered (a mobile device when it never did)."""
    info = session.data.get(DEVICE_KEY)
    return info if isinstance(info, DeviceInfo) else DeviceInfo()


class VirtualSink:
    """Where the stanzas for a virtual session go: nowhere, but IQs get an error."""

    def __init__(self, router: Router, on_close: Callable[[Session], None]) -> None:
        self.router = router
        self.on_close = on_close
        self.session: Session | None = None

    def send_element(self, element: Element) -> None:
        """Discard a stanza; an IQ request is answered with ``service-unavailable``."""
        if element.tag == IQ and element.get("type") in ("get", "set"):
            default = str(self.session.jid) if self.session is not None else None
            # RFC 6120 §8.2.3: an IQ get/set must be answered; nobody behind this session can.
            self.router.reply_error(
                element, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE), default_from=default
            )

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Another feature ends the session (ping, account removal, a resource conflict)."""
        if self.session is not None:
            self.on_close(self.session)
