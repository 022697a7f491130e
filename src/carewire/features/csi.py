"""XEP-0352 Client State Indication: hold back non-urgent traffic while a client is inactive.

Theory of operation
-------------------
The feature advertises ``<csi xmlns='urn:xmpp:csi:0'/>`` and registers the
stream's ``<active/>`` / ``<inactive/>`` nonzas with the kernel
(``ctx.nonzas``). A change is recorded in ``session.data["csi"]`` (with the
time of the change in ``session.data["csi_since"]``) and announced on
``session/client-state``; a session resumed on a new stream (XEP-0198,
``session/resumed``) is active again. On the delivery path
(``session/deliver``, after blocking and the other filters) the feature holds
back for an inactive session what a user does not need at once:

- presence without a type or of type unavailable — only the latest of each
  sender is kept (XEP-0352 §2.2: "push the latest presence from each contact");
- messages carrying nothing but chat states (XEP-0085) — likewise the latest
  of each sender.

Everything else is urgent (a message with a body, an alert, an IQ, a
subscription request): delivering it first flushes the held stanzas, in the
order they were held, so the client sees a consistent stream. Going active
flushes too (XEP-0352 §5: before any later request is processed, which holds
because a connection's events are handled in order). The held set is
bounded: past ``csi_max_held`` it is flushed. When the session ends, held
stanzas are dropped: none of them is worth storing.
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent, SessionEvent
from carewire.core.feature import ClientLink, FeatureContext, StreamPhase
from carewire.core.sessions import Session
from carewire.xmpp import stanza as st
from carewire.xmpp.stream import CSI, ClientStateChanged
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

CHATSTATES = "http://jabber.org/protocol/chatstates"
# session.data keys: the client state ("active"/"inactive"), since when (UTC), what is held.
CSI_STATE = "csi"
CSI_SINCE = "csi_since"
HELD = "csi.held"
# After blocking (1000) and the carbons clean-up: only what would really be written is held.
DELIVER_PRIORITY = -100

HoldKey = tuple[str, str]


def hold_key(stanza: Element) -> HoldKey | None:
    """The key under which a non-urgent stanza is held (None: urgent, deliver now)."""
    if stanza.tag == st.PRESENCE:
        if stanza.get("type") in (None, "unavailable"):
            return ("presence", stanza.get("from", ""))
        return None
    if stanza.tag == st.MESSAGE and len(stanza) and stanza.get("type") != "error":
        prefix = "{" + CHATSTATES + "}"
        if all(child.tag.startswith(prefix) for child in stanza):
            return ("chatstate", stanza.get("from", ""))
    return None


class ClientState:
    """Records the client's state; holds and flushes the traffic of inactive sessions."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.max_held = ctx.config.csi_max_held

    async def on_nonza(self, link: ClientLink, event: ClientStateChanged) -> None:
        """``<active/>`` or ``<inactive/>`` on the stream of a bound session."""
        if link.session is not None:
            await self.change(link.session, is_active=event.is_active)

    async def on_inline(self, session: Session, element: Element) -> Element | None:
        """XEP-0386 inline ``<active/>``/``<inactive/>``: "the session must begin in that state"."""
        await self.change(session, is_active=element.tag == f"{{{CSI}}}active")
        return None

    async def on_resumed(self, event: SessionEvent) -> None:
        """Hook ``session/resumed``: XEP-0352 §4.2 "A stream always begins in 'active' state"."""
        if event.session.data.get(CSI_STATE) == "inactive":
            await self.change(event.session, is_active=True)

    async def change(self, session: Session, *, is_active: bool) -> None:
        """Record the client's state and tell the features when it changes."""
        state = "active" if is_active else "inactive"
        if session.data.get(CSI_STATE, "active") == state:
            return
        session.data[CSI_STATE] = state
        session.data[CSI_SINCE] = self.ctx.clock.now()
        await self.ctx.hooks.fire(H.SESSION_CLIENT_STATE, SessionEvent(session=session))

    def on_deliver(self, event: DeliveryEvent) -> None:
        """Hook ``session/deliver``: non-urgent stanzas of inactive sessions are held."""
        targets = event.targets
        key: HoldKey | None = None
        is_known = False  # the key is worked out at the first inactive session (most are active)
        for i, target in enumerate(targets):
            if target is None:
                continue
            session, copy = target
            if session.data.get(CSI_STATE) != "inactive":
                continue
            if not is_known:
                key, is_known = hold_key(event.stanza), True
            if key is None:
                self.flush(session)  # what was held goes first, in order
                continue
            held: dict[HoldKey, Element] = session.data.setdefault(HELD, {})
            held.pop(key, None)  # the latest of a sender replaces (and moves after) the earlier
            held[key] = copy
            targets[i] = None
            if len(held) > self.max_held:
                log.debug("session %d: held stanzas past the bound, flushing", session.id)
                self.flush(session)

    @staticmethod
    def flush(session: Session) -> None:
        """Write the held stanzas (they already passed the delivery filters)."""
        held: dict[HoldKey, Element] | None = session.data.pop(HELD, None)
        if held:
            for stanza in held.values():
                session.send(stanza)

    def on_state(self, event: SessionEvent) -> None:
        """Hook ``session/client-state``: an active client gets what was held."""
        if event.session.data.get(CSI_STATE) == "active":
            self.flush(event.session)

    @staticmethod
    def on_closed(event: SessionEvent) -> None:
        """Hook ``session/closed``: held presence and chat states are not worth keeping."""
        event.session.data.pop(HELD, None)


def setup(ctx: FeatureContext) -> None:
    """Advertise client state indication, record it, and hold traffic of inactive clients."""
    state = ClientState(ctx)
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{CSI}}}csi"))
    ctx.nonzas.register(CSI, ClientStateChanged, state.on_nonza)
    ctx.bind2.register(CSI, (f"{{{CSI}}}active", f"{{{CSI}}}inactive"), state.on_inline)
    ctx.hooks.on(H.SESSION_RESUMED, state.on_resumed)
    ctx.hooks.on(H.SESSION_DELIVER, state.on_deliver, priority=DELIVER_PRIORITY)
    ctx.hooks.on(H.SESSION_CLIENT_STATE, state.on_state)
    ctx.hooks.on(H.SESSION_CLOSED, state.on_closed)
