"""XEP-0198 Stream Management: the stream feature, the end of detached sessions, re-routing.

Theory of operation
-------------------
The protocol itself runs in the kernel's connection handling
(:mod:`carewire.core.c2s`) and in :meth:`Session.send`, which keeps every
stanza sent to a session with stream management until the client acknowledges
it. This feature adds what is not tied to one connection:

- it advertises ``<sm xmlns='urn:xmpp:sm:3'/>`` after authentication (without
  this feature the stream refuses stream management nonzas);
- a periodic sweep ends the *detached* sessions (connection lost, waiting for
  resumption) whose resumption timeout has passed, and those whose sink was
  closed meanwhile (account removed, queue overflow);
- when a session with stream management ends — timed out, closed cleanly
  with ``</stream>``, replaced — the stanzas it never acknowledged are not
  lost: XEP-0198 §5 leaves them to the server, and we treat them like stanzas
  for a resource that went away. Messages of type chat or normal go again
  through the routing of the account's bare JID (another resource, or
  offline storage); carbon copies, groupchat, headline and error messages and
  presence are dropped; IQ requests get a ``service-unavailable`` error.
- at server shutdown detached sessions end the same way, so their messages
  reach offline storage before the database closes.
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.feature import FeatureContext, StreamPhase
from carewire.core.sessions import Session
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.stream import SM
from carewire.xmpp.xml import deep_copy, make

log = logging.getLogger(__name__)

CARBONS = "urn:xmpp:carbons:2"
CHATSTATES = "http://jabber.org/protocol/chatstates"
# Re-routing runs before the other session-closed handlers (presence goes unavailable after).
REROUTE_PRIORITY = 100
MIN_SWEEP_INTERVAL = 1.0
MAX_SWEEP_INTERVAL = 10.0


def sweep_interval(resume_timeout: float) -> float:
    """How often detached sessions are checked: a tenth of the timeout, within 1–10 s."""
    return min(MAX_SWEEP_INTERVAL, max(MIN_SWEEP_INTERVAL, resume_timeout / 10))


def is_reroutable(stanza: Element) -> bool:
    """Whether an unacknowledged stanza is a message worth delivering elsewhere.

    Chat and normal messages are (RFC 6121 §8.5.2 treats them alike); a message
    with nothing but chat states is not worth it, and a carbon copy is a copy:
    its original went to its own recipient.
    """
    if stanza.tag != st.MESSAGE or stanza.get("type", "normal") not in ("chat", "normal"):
        return False
    namespaces = {child.tag[1:].split("}", 1)[0] for child in stanza if child.tag[:1] == "{"}
    if CARBONS in namespaces:
        return False
    return bool(namespaces - {CHATSTATES})


class StreamManagementSessions:
    """Ends detached sessions and re-routes what sessions never acknowledged."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx

    async def sweep(self) -> None:
        """The periodic job: end detached sessions whose time is up."""
        now = self.ctx.clock.monotonic()
        for session in self.ctx.sessions.detached():
            sm = session.sm
            assert sm is not None and sm.resume_deadline is not None
            if now >= sm.resume_deadline:
                log.info("session %s was not resumed in time: ending it", session.jid)
                await self.end(session)

    async def end(self, session: Session) -> None:
        """End a session (no connection is involved: it is detached)."""
        if session.is_closed:
            return
        session.is_closed = True
        if self.ctx.sessions.remove(session):
            await self.ctx.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=session))

    async def on_stopping(self, _payload: object = None) -> None:
        """Server shutdown: end the detached sessions while storage is still open."""
        for session in self.ctx.sessions.detached():
            await self.end(session)

    async def on_closed(self, event: SessionEvent) -> None:
        """Hook ``session/closed``: re-route the unacknowledged stanzas of the session."""
        sm = event.session.sm
        if sm is None or not sm.unacked:
            return
        pending = list(sm.unacked)
        sm.unacked.clear()
        rerouted = 0
        for stanza in pending:
            if stanza.tag == st.IQ:
                self._fail_iq(stanza)
            elif is_reroutable(stanza):
                rerouted += await self._reroute(event.session, stanza)
        log.info(
            "session %s ended with %d unacked stanzas (%d messages re-routed)",
            event.session.jid,
            len(pending),
            rerouted,
        )

    async def _reroute(self, session: Session, stanza: Element) -> int:
        try:
            sender = JID.parse(stanza.get("from", ""))
        except InvalidJID:
            return 0
        copy = deep_copy(stanza)
        bare = session.jid.bare
        copy.set("to", str(bare))
        # Errors (offline storage full, …) go back to the sender as stanza errors.
        await self.ctx.router.route(copy, from_jid=sender, to_jid=bare)
        return 1

    def _fail_iq(self, iq: Element) -> None:
        """An IQ request the client never saw: the requester gets an error instead of silence."""
        if iq.get("type") not in ("get", "set"):
            return
        self.ctx.router.reply_error(
            iq, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE), default_from=iq.get("to")
        )


def setup(ctx: FeatureContext) -> None:
    """Advertise stream management and end detached sessions on time."""
    sessions = StreamManagementSessions(ctx)
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{SM}}}sm"))
    ctx.hooks.on(H.SESSION_CLOSED, sessions.on_closed, priority=REROUTE_PRIORITY)
    ctx.hooks.on(H.SERVER_STOPPING, sessions.on_stopping)
    ctx.every(
        "smacks-detached-sessions",
        sweep_interval(ctx.config.smacks_resume_timeout),
        sessions.sweep,
    )
