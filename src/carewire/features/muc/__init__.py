"""XEP-0045 Multi-User Chat on ``chat.DOMAIN``: conversations between up to 200 users.

Modules: :mod:`.model` (room state, pure), :mod:`.forms` (muc#roomconfig and
muc#roominfo forms), :mod:`.service` (state changes, delivery and the
server-side :class:`MucService` API), :mod:`.handlers` (presence and messages)
and :mod:`.admin` (IQs: disco, muc#owner, muc#admin); :mod:`.stanzas` builds invitations
and the destruction presence. XEP-0249 direct
invitations go from user to user and need nothing from the service beyond
making the invitee a member.
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.features.muc.admin import IqHandlers
from carewire.features.muc.handlers import StanzaHandlers
from carewire.features.muc.model import MAX_ROOM_USERS
from carewire.features.muc.service import MucService
from carewire.xmpp import stanza as st
from carewire.xmpp.jid import JID

__all__ = ["MAX_ROOM_USERS", "MucService", "setup"]

log = logging.getLogger(__name__)


class _Dispatcher:
    """The router's entry point for every stanza to ``chat.DOMAIN`` (and its rooms)."""

    def __init__(self, service: MucService) -> None:
        self.stanzas = StanzaHandlers(service)
        self.iqs = IqHandlers(service)

    async def __call__(
        self, stanza: Element, from_jid: JID, to_jid: JID, origin: Session | None
    ) -> None:
        kind = st.stanza_kind(stanza)
        log.debug("%s from %s to %s", kind, from_jid, to_jid)
        if kind == "iq":
            await self.iqs.dispatch(stanza, from_jid, to_jid)
        elif to_jid.localpart is None:
            return  # presence and messages to the service itself mean nothing
        elif kind == "presence":
            await self.stanzas.presence(stanza, from_jid, to_jid)
        else:
            await self.stanzas.message(stanza, from_jid, to_jid)


def setup(ctx: FeatureContext) -> None:
    """Serve ``chat.DOMAIN`` and share the :class:`MucService` with other features."""
    service = ctx.provide(MucService(ctx))
    ctx.router.add_service(ctx.hosts.chat_domain, _Dispatcher(service))
    ctx.hooks.on(H.SERVER_STARTED, service.load)

    async def on_closed(event: SessionEvent) -> None:
        await service.session_closed(event.session.jid)

    ctx.hooks.on(H.SESSION_CLOSED, on_closed)
