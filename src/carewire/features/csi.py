"""XEP-0352 Client State Indication: hold back non-urgent traffic while a client is inactive.

Theory of operation
-------------------
The kernel (:mod:`carewire.core.c2s`) records the client's ``<active/>`` /
``<inactive/>`` in ``session.data["csi"]`` (with the time of the change in
``session.data["csi_since"]``) and fires ``session/client-state``. This
feature advertises ``<csi xmlns='urn:xmpp:csi:0'/>`` and, on the delivery
path (``session/deliver``, after blocking and the other filters), holds back
for an inactive session what a user does not need at once:

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
from carewire.core.feature import FeatureContext, StreamPhase
from carewire.core.sessions import CSI_STATE, Session
from carewire.xmpp import stanza as st
from carewire.xmpp.stream import CSI
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

CHATSTATES = "http://jabber.org/protocol/chatstates"
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
    """Holds and flushes the traffic of inactive sessions."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.max_held = ctx.config.csi_max_held

    def on_deliver(self, event: DeliveryEvent) -> bool:
        """Hook ``session/deliver``: True (held) for non-urgent stanzas of inactive sessions."""
        session = event.session
        if session.data.get(CSI_STATE) != "inactive":
            return False
        key = hold_key(event.stanza)
        if key is None:
            self.flush(session)  # what was held goes first, in order
            return False
        held: dict[HoldKey, Element] = session.data.setdefault(HELD, {})
        held.pop(key, None)  # the latest of a sender replaces (and moves after) the earlier
        held[key] = event.stanza
        if len(held) > self.max_held:
            log.debug("session %d: held stanzas past the bound, flushing", session.id)
            self.flush(session)
        return True

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
    """Advertise client state indication and hold traffic of inactive clients."""
    state = ClientState(ctx)
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{CSI}}}csi"))
    ctx.hooks.on(H.SESSION_DELIVER, state.on_deliver, priority=DELIVER_PRIORITY)
    ctx.hooks.on(H.SESSION_CLIENT_STATE, state.on_state)
    ctx.hooks.on(H.SESSION_CLOSED, state.on_closed)
