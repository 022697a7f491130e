"""XEP-0198 Stream Management: acks, resumption, detached sessions and what they never acknowledged.

Theory of operation
-------------------
The state of stream management belongs to the session
(:class:`~carewire.core.sessions.StreamManagement`): the kernel counts the
stanzas a client sends (stanza intake) and :meth:`Session.send` keeps every
stanza sent to the session until the client acknowledges it, requesting an
ack unless one is outstanding. Everything else is decided here:

- the feature advertises ``<sm xmlns='urn:xmpp:sm:3'/>`` after
  authentication and registers the stream's SM nonzas with the kernel
  (``ctx.nonzas``); without this feature the stream refuses them;
- ``<enable/>`` gives a bound session its state, and a resumption id when
  asked for and allowed; ``<r/>`` is answered with the count of handled
  stanzas once batched writes are durable; ``<a/>`` drops what it
  acknowledges (an ack for more than was sent ends the stream with
  ``<handled-count-too-high/>``);
- when the connection of a resumable session breaks without ``</stream>``
  (hook ``session/connection-lost``), the session is *detached*: still bound
  and available, its stanzas queued, until it is resumed or its time runs out;
- ``<resume/>`` on a new stream of the same account moves the session to that
  stream, retransmits the queue and fires ``session/resumed``;
- a periodic sweep ends the detached sessions whose resumption timeout has
  passed, and those whose sink was closed meanwhile (account removed, queue
  overflow);
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
import math
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.feature import (
    ClientLink,
    ConnectionLost,
    FeatureContext,
    InlineResume,
    StreamPhase,
)
from carewire.core.sessions import SM_REQUEST, Session, StreamManagement
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.stream import (
    SM,
    Nonza,
    SmAckReceived,
    SmAckRequested,
    SmEnableRequested,
    SmResumeRequested,
    nonza_event,
)
from carewire.xmpp.xml import deep_copy, make

log = logging.getLogger(__name__)

CARBONS = "urn:xmpp:carbons:2"
CHATSTATES = "http://jabber.org/protocol/chatstates"
# Re-routing runs before the other session-closed handlers (presence goes unavailable after).
REROUTE_PRIORITY = 100
MIN_SWEEP_INTERVAL = 1.0
MAX_SWEEP_INTERVAL = 10.0
# Stream errors after which a session is not kept for resumption: we ended it on
# purpose. A dead connection (no error, or the ping's connection-timeout) is kept.
RESUMABLE_ENDS = frozenset({None, StreamCondition.CONNECTION_TIMEOUT})


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


class DetachedSink:
    """The sink of a session whose connection broke while it waits for resumption.

    Stanzas stay in the session's unacknowledged queue; closing the sink ends
    the session at the next sweep — except ``connection-timeout``, which means
    nothing for a connection already gone.
    """

    def __init__(self, sm: StreamManagement) -> None:
        self.sm = sm

    def send_element(self, element: Element) -> None:
        """Nothing to write to: the session's queue keeps stanzas."""

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """End the session soon (a replaced or removed account, an overflowing queue)."""
        if condition is not StreamCondition.CONNECTION_TIMEOUT:
            self.sm.expire_now()


def send_failed(link: ClientLink, condition: StanzaCondition) -> None:
    """XEP-0198 §3/§5: ``<failed/>`` with a stanza error condition."""
    failed = Element(f"{{{SM}}}failed")
    SubElement(failed, f"{{{ns.STANZAS_ERR}}}{condition.value}")
    link.stream.send_nonza(failed)


def handled_count_too_high(link: ClientLink, sm: StreamManagement, h: int) -> None:
    """XEP-0198 §4: an ack for more than we sent ends the stream."""
    log.warning("client acknowledged %d stanzas, %d were sent", h, sm.sent_count)
    app = Element(
        f"{{{SM}}}handled-count-too-high", {"h": str(h), "send-count": str(sm.sent_count)}
    )
    link.stream.close(StreamCondition.UNDEFINED_CONDITION, app_condition=app)
    link.sink.close()


def request_ack(link: ClientLink, sm: StreamManagement) -> None:
    """Ask for an ack when stanzas still wait for one (after an ack, or a resumption)."""
    sm.is_ack_requested = bool(sm.unacked)
    if sm.unacked:
        link.sink.send_element(SM_REQUEST)


def _enabled_sm(link: ClientLink) -> StreamManagement:
    """The session's state for ``<r/>`` and ``<a/>``; without it they are unsupported."""
    sm = link.session.sm if link.session is not None else None
    if sm is None:
        raise RemoteProtocolError(
            StreamCondition.UNSUPPORTED_STANZA_TYPE, "stream management is not enabled"
        )
    return sm


class ClientStreams:
    """XEP-0198 on client streams: enabling, acks, resumption, detaching."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx

    async def enable(self, link: ClientLink, event: SmEnableRequested) -> None:
        """``<enable/>``: give the bound session its state (§3), resumable if asked (§5)."""
        session = link.session
        # XEP-0198 §3: enabling before binding, or twice, is an unexpected request.
        if session is None or session.sm is not None:
            send_failed(link, StanzaCondition.UNEXPECTED_REQUEST)
            return
        link.stream.send_nonza(self._enabled(session, event))

    def _enabled(self, session: Session, event: SmEnableRequested) -> Element:
        """Give ``session`` its state; the ``<enabled/>`` that says so."""
        config = self.ctx.config
        sm = session.sm = StreamManagement(max_unacked=config.smacks_max_unacked)
        enabled = Element(f"{{{SM}}}enabled")
        if event.resume and config.smacks_resume_timeout > 0:
            timeout = config.smacks_resume_timeout
            if event.max is not None:
                timeout = min(timeout, float(event.max))  # the client's preference
            sm.resume_timeout = timeout
            enabled.set("id", self.ctx.sessions.make_resumable(session))
            enabled.set("resume", "true")
            enabled.set("max", str(max(1, math.ceil(timeout))))
        log.debug("stream management enabled for %s", session.jid)
        return enabled

    async def enable_inline(self, session: Session, element: Element) -> Element | None:
        """XEP-0386: "The <bound/> response MUST contain the resulting XEP-0198 <enabled/>"."""
        event = nonza_event(Nonza.SM_ENABLE, element)
        assert isinstance(event, SmEnableRequested)
        return self._enabled(session, event)

    async def ack_requested(self, link: ClientLink, _event: SmAckRequested) -> None:
        """``<r/>``: answer with the count of handled stanzas (§4)."""
        sm = _enabled_sm(link)
        # What we acknowledge must survive a crash: batched writes commit first.
        await self.ctx.durability.flush()
        link.stream.send_nonza(Element(f"{{{SM}}}a", {"h": str(sm.handled)}))

    async def ack_received(self, link: ClientLink, event: SmAckReceived) -> None:
        """``<a/>``: drop what the client acknowledged (§4)."""
        sm = _enabled_sm(link)
        if event.h is None:
            raise RemoteProtocolError(StreamCondition.BAD_FORMAT, "'h' must be an unsignedInt")
        if not sm.ack(event.h):
            handled_count_too_high(link, sm, event.h)
            return
        request_ack(link, sm)  # stanzas sent after our last <r/> still wait for an ack

    async def resume(self, link: ClientLink, event: SmResumeRequested) -> None:
        """``<resume/>``: move the former session to this stream (§5)."""
        login = link.stream.authenticated_as
        assert login is not None
        if link.session is not None:
            send_failed(link, StanzaCondition.UNEXPECTED_REQUEST)  # already bound
            return
        if event.h is None:
            send_failed(link, StanzaCondition.BAD_REQUEST)
            return
        session = self._resumable(login, event.previd)
        if session is None:
            send_failed(link, StanzaCondition.ITEM_NOT_FOUND)
            return
        assert session.sm is not None
        if not session.sm.ack(event.h):
            handled_count_too_high(link, session.sm, event.h)
            return
        await self.ctx.durability.flush()  # <resumed h/> acknowledges too
        link.stream.sm_resumed(event.previd, session.sm.handled)
        await self.complete(link, session)

    def _resumable(self, login: str, previd: str) -> Session | None:
        # Ids are unguessable and only the account that enabled one may use it.
        session = self.ctx.sessions.resumable(previd, login)
        return session if session is not None and session.sm is not None else None

    async def prepare(self, login: str, element: Element) -> tuple[Session | None, Element]:
        """XEP-0198 ``<resume/>`` inside SASL2 ``<authenticate/>``: the session and the answer.

        The answer (``<resumed/>`` or ``<failed/>``) goes into the SASL2
        ``<success/>``; on ``<failed/>`` the login goes on to bind a new session.
        """
        event = nonza_event(Nonza.SM_RESUME, element)
        assert isinstance(event, SmResumeRequested)
        session = self._resumable(login, event.previd)
        failed = Element(f"{{{SM}}}failed")
        if event.h is None or session is None:
            condition = (
                StanzaCondition.BAD_REQUEST if event.h is None else StanzaCondition.ITEM_NOT_FOUND
            )
            SubElement(failed, f"{{{ns.STANZAS_ERR}}}{condition.value}")
            return None, failed
        assert session.sm is not None
        if not session.sm.ack(event.h):
            # Inline there is no stream to fail yet: the session is not resumed.
            SubElement(failed, f"{{{ns.STANZAS_ERR}}}{StanzaCondition.UNEXPECTED_REQUEST.value}")
            return None, failed
        await self.ctx.durability.flush()
        resumed = Element(
            f"{{{SM}}}resumed", {"h": str(session.sm.handled), "previd": event.previd}
        )
        return session, resumed

    async def complete(self, link: ClientLink, session: Session) -> None:
        """The client was told it resumed: adopt the session, retransmit, announce."""
        sm = session.sm
        assert sm is not None
        previous = link.adopt(session)
        sm.resume_deadline = None
        if not isinstance(previous, DetachedSink):
            # §5: "the old stream SHOULD be terminated".
            previous.close(StreamCondition.CONFLICT, "the session was resumed on another stream")
        for element in list(sm.unacked):  # §5: retransmit what the client did not handle
            link.sink.send_element(element)
        request_ack(link, sm)
        log.info("resumed %s (%d stanzas retransmitted)", session.jid, len(sm.unacked))
        await self.ctx.hooks.fire(H.SESSION_RESUMED, SessionEvent(session=session))

    def on_connection_lost(self, lost: ConnectionLost) -> bool:
        """Hook ``session/connection-lost``: detach a resumable session (True: kept).

        XEP-0198 §6: "If the stream is not cleanly closed then the server
        SHOULD consider the stream to be unfinished … and SHOULD maintain the
        session on behalf of the client for a limited amount of time."
        """
        session, stream = lost.session, lost.stream
        sm = session.sm
        if sm is None or sm.resume_id is None or stream.is_closed_by_peer:
            return False
        if stream.end_condition not in RESUMABLE_ENDS:
            return False
        if self.ctx.sessions.resumable(sm.resume_id, session.username) is not session:
            return False
        sm.resume_deadline = self.ctx.clock.monotonic() + sm.resume_timeout
        sm.is_ack_requested = False
        session.sink = DetachedSink(sm)
        log.info(
            "connection of %s lost: resumable for %.0fs (%d unacked)",
            session.jid,
            sm.resume_timeout,
            len(sm.unacked),
        )
        return True


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
    """Advertise stream management, handle its nonzas, end detached sessions on time."""
    streams = ClientStreams(ctx)
    sessions = StreamManagementSessions(ctx)
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{SM}}}sm"))
    ctx.nonzas.register(SM, SmEnableRequested, streams.enable)
    ctx.nonzas.register(SM, SmResumeRequested, streams.resume)
    ctx.nonzas.register(SM, SmAckRequested, streams.ack_requested)
    ctx.nonzas.register(SM, SmAckReceived, streams.ack_received)
    ctx.bind2.register(SM, (f"{{{SM}}}enable",), streams.enable_inline)
    ctx.provide(streams, as_type=InlineResume)  # type: ignore[type-abstract]
    ctx.hooks.on(H.SESSION_CONNECTION_LOST, streams.on_connection_lost)
    ctx.hooks.on(H.SESSION_CLOSED, sessions.on_closed, priority=REROUTE_PRIORITY)
    ctx.hooks.on(H.SERVER_STOPPING, sessions.on_stopping)
    ctx.every(
        "smacks-detached-sessions",
        sweep_interval(ctx.config.smacks_resume_timeout),
        sessions.sweep,
    )
