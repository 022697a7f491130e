"""XEP-0054 vcard-temp: users publish their own vCard and read anyone's.

A vCard is stored as the serialised ``<vCard xmlns='vcard-temp'/>`` element
it was set with (whole-document replacement: XEP-0054 has no partial
updates), at most :data:`MAX_VCARD_BYTES` long.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.errors import NotFoundError
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

VCARD = f"{{{ns.VCARD}}}vCard"
MAX_VCARD_BYTES = 64 * 1024
#: Called after a user set their vCard: (login, the vCard element).
SetListener = Callable[[str, Element], Awaitable[None]]


class VCards:
    """vCard get/set handlers on :class:`~carewire.core.stores.VCardStore`."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self._listeners: list[SetListener] = []

    def on_set(self, listener: SetListener) -> None:
        """Call ``listener`` after each vCard a user sets (XEP-0398 conversion)."""
        self._listeners.append(listener)

    async def load(self, login: str) -> Element | None:
        """The stored vCard of ``login``, or None."""
        return await self._load(login)

    async def _load(self, login: str) -> Element | None:
        xml = await self.ctx.stores.vcards.get(login)
        if xml is None:
            return None
        try:
            vcard = parse_document(xml)
        except RemoteProtocolError:
            log.error("stored vCard of %s is not well-formed; ignoring it", login)
            return None
        return vcard if vcard.tag == VCARD else None

    async def get_own(self, req: IqRequest) -> Element | None:
        """XEP-0054 §3.1: "If no vCard exists, the server MUST return a stanza error
        (which SHOULD be <item-not-found/>) or an IQ-result containing an empty
        <vCard/> element" — we return the empty element.
        """
        login = req.sender_login
        vcard = await self._load(login)
        return vcard if vcard is not None else Element(VCARD)

    async def get_other(self, req: IqRequest) -> Element | None:
        """XEP-0054 §3.3: the server answers for another user's bare JID.

        "If no vCard exists or the user does not exist, the server MUST return
        a stanza error, which SHOULD [be] <service-unavailable/> or
        <item-not-found/>" — one condition for both, so the answer does not
        tell which accounts exist.
        """
        login = req.to_jid.localpart
        vcard = await self._load(login) if login is not None else None
        if vcard is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        return vcard

    async def set_own(self, req: IqRequest) -> Element | None:
        """XEP-0054 §3.2: replace the sender's vCard with the one sent."""
        login = req.sender_login
        xml = serialize(req.payload, None)
        size = len(xml.encode("utf-8"))
        if size > MAX_VCARD_BYTES:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE,
                f"the vCard is too large ({size} bytes; at most {MAX_VCARD_BYTES})",
            )
        try:
            await self.ctx.stores.vcards.set(login, xml)
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None
        log.debug("vCard of %s updated (%d bytes)", login, size)
        for listener in self._listeners:
            await listener(login, req.payload)
        return None

    async def set_other(self, req: IqRequest) -> Element | None:
        """XEP-0054 §3.2: "If a user attempts to perform an IQ set on another user's
        vCard ..., the server MUST return a stanza error, which SHOULD be
        <forbidden/> or <not-allowed/>".
        """
        raise StanzaError(StanzaCondition.FORBIDDEN, "only the owner may change a vCard")


def setup(ctx: FeatureContext) -> None:
    """Register the vCard handlers and advertise vcard-temp."""
    vcards = ctx.provide(VCards(ctx))
    # XEP-0054 §4: "If an entity supports the vcard-temp protocol, it MUST
    # report that by including a service discovery feature of "vcard-temp"".
    ctx.disco.add_server_feature(ns.VCARD)
    ctx.disco.add_account_feature(ns.VCARD)
    ctx.iq.register(VCARD, vcards.get_own, types=("get",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(VCARD, vcards.get_other, types=("get",), targets=(IqTarget.BARE,))
    ctx.iq.register(VCARD, vcards.set_own, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(VCARD, vcards.set_other, types=("set",), targets=(IqTarget.BARE,))
