"""Remote wipe of a device: ``<wipe/>`` and ``<wiped/>`` of ``urn:carewire:device:0``.

Theory of operation: an administrator's Wipe Device (the directory's devices
facet) marks the device — DEVICES name ``login/resource`` — wipe-pending in
the directory's index and announces ``DeviceWiped``; every session of the
device ends at once. A session bound for a wipe-pending device then:

1. receives an IQ set ``<wipe xmlns='urn:carewire:device:0'/>`` from the
   server, right after binding;
2. receives nothing else: every stanza for it is dropped at delivery, its
   own stanzas are swallowed (it never becomes available, so messages to the
   user go to the user's other devices or to offline storage, and messages to
   its full JID are handled as if sent to the bare JID);
3. answers, once it erased its data, with an IQ set
   ``<wiped xmlns='urn:carewire:device:0'/>`` to the server: the device is
   recorded as logged out (the directory's ``confirm_wiped``; the time of the
   request is kept), the IQ is answered and the session ends.

A wipe requested by another process (the command line) reaches the index at
its next reload; a periodic sweep then ends the device's sessions. See
docs/devices.md. Push notifications skip wipe-pending and push-disabled
devices (``carewire.push.devices``, docs/push.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core.events import DeliveryEvent, IqRequest, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.directory.model import DeviceWiped, DirectoryEvent, UnknownDeviceError
from carewire.directory.service import DirectoryService
from carewire.features.clinical_presence.model import NS_DEVICE
from carewire.features.clinical_presence.service import ClinicalPresence
from carewire.features.clinical_presence.sessions import STATE_KEY, SessionState, is_virtual
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.stanza import IQ
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

WIPE: Final = f"{{{NS_DEVICE}}}wipe"
WIPED: Final = f"{{{NS_DEVICE}}}wiped"
#: session.data key: True while the session's device must be wiped.
PENDING_KEY: Final = "wipe_pending"
WIPE_TEXT: Final = "device wipe requested"
WIPED_TEXT: Final = "device wiped"


def device_name(session: Session) -> str:
    """The session's DEVICES name."""
    return f"{session.username}/{session.resource}"


def is_pending(session: Session) -> bool:
    """Whether ``session`` belongs to a device waiting to be wiped."""
    return session.data.get(PENDING_KEY) is True


class DeviceWipe:
    """Tells wipe-pending devices to erase their data, and keeps everything else from them."""

    def __init__(
        self, ctx: FeatureContext, directory: DirectoryService, presence: ClinicalPresence
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.index = directory.index
        self.presence = presence

    # -- a device connects ---------------------------------------------------------------

    def on_bound(self, event: SessionEvent) -> None:
        """Hook ``session/bound``: a session of a wipe-pending device is told to wipe."""
        session = event.session
        if is_virtual(session) or not self.index.is_wipe_pending(device_name(session)):
            return
        session.data[PENDING_KEY] = True
        log.info("device %s must be wiped: telling it", device_name(session))
        iq = make(IQ, {"type": "set", "id": f"wipe-{session.id}", "to": str(session.jid)})
        iq.set("from", self.ctx.hosts.domain)
        iq.append(make(WIPE))
        # Sent directly: the delivery hook below keeps everything else from this session.
        self.ctx.router.send_from_server(session, iq)

    # -- nothing else in or out ----------------------------------------------------------------

    def gate(self, event: StanzaEvent) -> bool:
        """Hooks ``pre-*``: a wipe-pending session may only answer (IQ results, ``<wiped/>``)."""
        session = event.origin
        if session is None or not is_pending(session):
            return False
        stanza = event.stanza
        if stanza.tag == IQ:
            if stanza.get("type") in ("result", "error"):
                return False
            if len(stanza) == 1 and stanza[0].tag == WIPED:
                return False
        return True  # swallowed

    def on_deliver(self, event: DeliveryEvent) -> None:
        """Hook ``session/deliver``: nothing reaches a wipe-pending session."""
        targets = event.targets
        for i, target in enumerate(targets):
            if target is not None and is_pending(target[0]):
                targets[i] = None

    async def on_message_full(self, event: StanzaEvent) -> bool:
        """Hook ``message/full``: a message for a wipe-pending session goes to the bare JID."""
        assert event.to_jid is not None
        target = self.ctx.sessions.get(event.to_jid)
        if target is None or not is_pending(target):
            return False
        await self.ctx.router.route(
            event.stanza, from_jid=event.from_jid, to_jid=event.to_jid.bare, origin=event.origin
        )
        return True

    # -- the device answers -----------------------------------------------------------------------

    async def on_wiped(self, req: IqRequest) -> Element | None:
        """IQ set ``<wiped/>``: the device erased its data; it is now logged out."""
        session = req.origin
        if session is None or is_virtual(session):
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only a device confirms its wipe")
        name = device_name(session)
        if not (is_pending(session) or self.index.is_wipe_pending(name)):
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "no wipe was requested")
        # Registration writes queued before this answer must not overwrite "logged out".
        await self.presence.drain()
        try:
            await self.directory.devices.confirm_wiped(session.username, name)
        except UnknownDeviceError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no wipe was requested") from None
        state = session.data.get(STATE_KEY)
        if isinstance(state, SessionState):
            state.is_unregistered = True  # its disconnection keeps the logged-out status
        session.data[PENDING_KEY] = False  # the result below may reach it
        log.info("device %s confirmed its wipe", name)
        # After the result, which the router sends when this handler returns.
        loop = asyncio.get_running_loop()
        loop.call_soon(session.sink.close, StreamCondition.NOT_AUTHORIZED, WIPED_TEXT)
        return None

    # -- wipes requested ------------------------------------------------------------------

    async def on_change(self, event: DirectoryEvent) -> None:
        """Directory listener: a wipe was requested in this process; end the device's sessions."""
        if isinstance(event, DeviceWiped):
            resource = event.device.partition("/")[2]
            if resource:
                self.ctx.accounts.end_sessions(event.login, resource, text=WIPE_TEXT)

    async def sweep(self) -> None:
        """End sessions of devices found wipe-pending by the index reload (another process)."""
        for session in list(self.ctx.sessions):
            if is_pending(session) or is_virtual(session) or session.is_closed:
                continue
            if self.index.is_wipe_pending(device_name(session)):
                log.info("device %s must be wiped: ending its session", device_name(session))
                session.sink.close(StreamCondition.NOT_AUTHORIZED, WIPE_TEXT)
