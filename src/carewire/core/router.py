"""Stanza routing for the chat domain (RFC 6120 §8, RFC 6121 §8.5).

Theory of operation: a stanza from a local session first goes through the
``pre-<kind>`` hooks (features act on what a client *sends*: presence
broadcast, subscriptions, blocking); if none handles it, :meth:`Router.route`
delivers it by address: the server itself (``…/host``), an account
(``…/bare``) or one resource (``…/full``). Messages and presence are handed
to hooks (the message and presence features hold the RFC 6121 §8.5 rules);
IQs go to the :class:`IqRegistry` handlers, or straight to the addressed
resource. Errors raised as :class:`StanzaError` become error replies here,
the one place stanza errors are translated.

External components (XEP-0114) are attached by domain while their stream is
up (:meth:`Router.attach_component`): stanzas for a configured component's
domain go over its stream, or fail with ``service-unavailable`` while it is
away; replies to what a component sent find their way back to it.

Federation: a stanza for another domain goes to the attached
:class:`~carewire.core.federation.RemoteRouter` (none attached: the sender
gets ``remote-server-not-found``), and hook ``remote/sent`` tells the features
it was handed over. A stanza arriving from another domain (``origin`` None,
sender not ours) first passes hook ``remote/inbound``, where the federation
feature applies what a remote domain may reach; replies and errors for a
remote sender go back through the remote router. Synchronous delivery paths
(a room's broadcast) use :meth:`Router.post`, which keeps the order of what
goes to other domains through one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent, IqRequest, RemoteFailure, StanzaEvent, Target
from carewire.core.federation import RemoteRouter
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.iq import IqRegistry, IqTarget
from carewire.core.sessions import Session, SessionManager
from carewire.core.stats import StanzaCounts
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import SharedBody

log = logging.getLogger(__name__)

#: Stanzas for other domains that synchronous paths may queue before they are handed over.
MAX_POSTED = 10_000

# A sub-service (chat.DOMAIN, patients.DOMAIN): handles every stanza to its domain.
# (stanza, from, to, origin); raises StanzaError to fail the stanza.
ServiceHandler = Callable[[Element, JID, JID, "Session | None"], Awaitable[None]]
# An external component's stream (XEP-0114): takes each stanza for its domain, never blocks.
ComponentSink = Callable[[Element], None]

_PRE = {"message": H.PRE_MESSAGE, "presence": H.PRE_PRESENCE, "iq": H.PRE_IQ}
_HOOKS = {
    ("message", "host"): H.MESSAGE_HOST,
    ("message", "bare"): H.MESSAGE_BARE,
    ("message", "full"): H.MESSAGE_FULL,
    ("presence", "host"): H.PRESENCE_HOST,
    ("presence", "bare"): H.PRESENCE_BARE,
    ("presence", "full"): H.PRESENCE_FULL,
}


class Router:
    """Routes stanzas between local sessions, the server and its features."""

    def __init__(
        self, *, hosts: Hosts, hooks: HookBus, sessions: SessionManager, iq: IqRegistry
    ) -> None:
        self.hosts = hosts
        self.hooks = hooks
        self.sessions = sessions
        self.iq = iq
        # Server-originated IQs awaiting a response: id → (future, who must answer).
        self._pending_iq: dict[str, tuple[asyncio.Future[Element], JID]] = {}
        self._domain_jid = hosts.domain_jid
        self._services: dict[str, ServiceHandler] = {}
        self._components: dict[str, ComponentSink] = {}
        self.remote: RemoteRouter | None = None
        self._posted: asyncio.Queue[tuple[Element, JID, JID]] = asyncio.Queue(MAX_POSTED)
        self._pump: asyncio.Task[None] | None = None
        # Stanzas in and out, read by /metrics: one increment per stanza, nothing more.
        self.stats = StanzaCounts()
        hooks.on(H.SERVER_STOPPING, self._stop_pump)

    def attach_remote(self, remote: RemoteRouter | None) -> None:
        """Send stanzas for other domains through ``remote`` (None: federation is off)."""
        self.remote = remote

    def is_remote(self, jid: JID) -> bool:
        """Whether ``jid`` belongs to another domain (not ours, nor one of our services)."""
        return not self.hosts.is_local(jid.domain)

    @property
    def service_domains(self) -> tuple[str, ...]:
        """The domains a service or a connected component answers for (the server's disco#items)."""
        return tuple(sorted({*self._services, *self._components}))

    def add_service(self, domain: str, handler: ServiceHandler) -> None:
        """Hand every stanza addressed to ``domain`` (a sub-domain of ours) to ``handler``."""
        if domain not in self.hosts.subdomains:
            raise ValueError(f"{domain} is not a sub-domain of {self.hosts.domain}")
        if domain in self._services:
            raise ValueError(f"two services for {domain}")
        self._services[domain] = handler

    def wrap_service(self, domain: str, wrap: Callable[[ServiceHandler], ServiceHandler]) -> None:
        """Put ``wrap(handler)`` in front of the service of ``domain`` (the cluster's rooms)."""
        handler = self._services.get(domain)
        if handler is not None:
            self._services[domain] = wrap(handler)

    def attach_component(self, domain: str, sink: ComponentSink) -> None:
        """Hand every stanza for ``domain`` (a configured component's, XEP-0114) to ``sink``.

        Raises:
            ValueError: ``domain`` is not a configured component domain, or is attached already.
        """
        if domain not in self.hosts.components:
            raise ValueError(f"{domain} is not a configured component domain")
        if domain in self._components:
            raise ValueError(f"{domain} is attached already")
        self._components[domain] = sink

    def detach_component(self, domain: str, sink: ComponentSink) -> None:
        """Stop handing stanzas to ``sink``: ``domain`` is service-unavailable until attached."""
        if self._components.get(domain) == sink:  # bound methods are equal, not identical
            del self._components[domain]

    async def route_from_session(self, session: Session, stanza: Element) -> None:
        """Handle a stanza a bound client sent (RFC 6120 §8.1.2.1: we stamp 'from')."""
        kind = st.stanza_kind(stanza)
        if kind is None:
            raise RemoteProtocolError(
                StreamCondition.UNSUPPORTED_STANZA_TYPE, "expected message, presence or iq"
            )
        stanza.set("from", str(session.jid))
        self.stats.received[kind] += 1
        log.debug("%s from %s to %s", kind, session.jid, stanza.get("to"))
        try:
            to = self._parse_to(stanza)
            if kind == "iq":
                st.validate_iq(stanza)
        except StanzaError as err:
            self.reply_error(stanza, err)
            return
        if to is None and kind != "presence":
            to = session.jid.bare
        event = StanzaEvent(stanza=stanza, from_jid=session.jid, to_jid=to, origin=session)
        try:
            if await self.hooks.fire(_PRE[kind], event):
                return
            await self.route(stanza, from_jid=session.jid, to_jid=to, origin=session)
        except StanzaError as err:
            self.reply_error(stanza, err)

    async def route(
        self, stanza: Element, *, from_jid: JID, to_jid: JID | None, origin: Session | None = None
    ) -> None:
        """Deliver a stanza to a local address (or fail it with an error reply)."""
        kind = st.STANZA_KINDS[stanza.tag]
        if to_jid is None:
            return  # presence broadcast is the presence feature's business
        try:
            if origin is None and self.is_remote(from_jid):
                self.stats.received_s2s[kind] += 1
                if self.is_remote(to_jid):
                    # Never a relay: another domain may only reach addresses of ours.
                    raise StanzaError(StanzaCondition.NOT_ALLOWED, "not a relay")
                event = StanzaEvent(stanza=stanza, from_jid=from_jid, to_jid=to_jid, origin=None)
                if await self.hooks.fire(H.REMOTE_INBOUND, event):
                    return
            if to_jid.domain == self.hosts.domain:
                target = (
                    "host"
                    if to_jid.localpart is None
                    else ("bare" if to_jid.resource is None else "full")
                )
                if kind == "iq":
                    await self._route_iq(stanza, from_jid, to_jid, origin, target)
                    return
                event = StanzaEvent(stanza=stanza, from_jid=from_jid, to_jid=to_jid, origin=origin)
                await self.hooks.fire(_HOOKS[(kind, target)], event)
            elif to_jid.domain in self.hosts.subdomains:
                service = self._services.get(to_jid.domain)
                if service is None:
                    raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
                await service(stanza, from_jid, to_jid, origin)
            elif to_jid.domain in self.hosts.components:
                sink = self._components.get(to_jid.domain)
                if sink is None:
                    raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "the component is away")
                sink(stanza)
            else:
                await self._to_remote(stanza, from_jid, to_jid)
        except StanzaError as err:
            self.reply_error(stanza, err, default_from=str(to_jid))

    # -- other domains ------------------------------------------------------------

    async def _to_remote(self, stanza: Element, from_jid: JID, to_jid: JID) -> None:
        try:
            if self.remote is None:
                # Federation is not enabled on this server.
                raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND)
            await self.remote.send(stanza, from_jid=from_jid, to_jid=to_jid)
            self.stats.sent_s2s[st.STANZA_KINDS[stanza.tag]] += 1
        except StanzaError as err:
            if self.hooks.has_handlers(H.REMOTE_FAILED):
                failure = RemoteFailure(
                    stanza=stanza, from_jid=from_jid, to_jid=to_jid, condition=err.condition
                )
                self.hooks.fire_sync(H.REMOTE_FAILED, failure)
            raise
        if self.hooks.has_handlers(H.REMOTE_SENT):
            event = StanzaEvent(stanza=stanza, from_jid=from_jid, to_jid=to_jid, origin=None)
            self.hooks.fire_sync(H.REMOTE_SENT, event)

    def post(self, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        """Send ``stanza`` from a synchronous path: to a local session now, elsewhere in order.

        A local full JID without a session drops the stanza (as
        :meth:`deliver` callers do); a stanza for another domain joins the
        queue that hands stanzas to the remote router one by one, so a room's
        presences and messages reach a remote occupant in the order sent.
        """
        if not self.is_remote(to_jid):
            session = self.sessions.get(to_jid)
            if session is not None:
                self.deliver(session, stanza)
            else:
                self._to_component(to_jid, stanza)
            return
        try:
            self._posted.put_nowait((stanza, from_jid, to_jid))
        except asyncio.QueueFull:
            log.warning("queue for other domains full: stanza for %s bounced", to_jid.domain)
            self.reply_error(stanza, StanzaError(StanzaCondition.RESOURCE_CONSTRAINT))
            return
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._drain(), name="router-posted")

    def post_copies(self, body: SharedBody, recipients: Iterable[JID]) -> None:
        """Send each recipient its own copy of ``body``'s stanza, as :meth:`post` would.

        The copies for local sessions pass the ``session/deliver`` hooks in one
        event (a room's broadcast): each hook looks at the stanza once and then
        at each session, instead of once per copy.
        """
        from_jid: JID | None = None
        first: Element | None = None  # the first local copy: it stands for all in the event
        local: list[Target] = []
        for to in recipients:
            copy = body.copy()
            copy.set("to", str(to))
            if self.is_remote(to):
                if from_jid is None:
                    from_jid = JID.parse(copy.get("from", self.hosts.domain))
                self.post(copy, from_jid=from_jid, to_jid=to)
                continue
            session = self.sessions.get(to)
            if session is None:
                self._to_component(to, copy)
            elif session.node:
                session.send(copy)
            else:
                local.append((session, copy))
                if first is None:
                    first = copy
        if first is not None:
            self._write_local(first, local)

    async def _drain(self) -> None:
        while not self._posted.empty():
            stanza, from_jid, to_jid = self._posted.get_nowait()
            try:
                await self._to_remote(stanza, from_jid, to_jid)
            except StanzaError as err:
                self.reply_error(stanza, err, default_from=str(to_jid))
            except Exception:  # the pump supervises its stanzas: one failure stops no other
                log.exception("handing a stanza to the remote router failed")

    async def _stop_pump(self, _payload: object) -> None:
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    # -- delivery -------------------------------------------------------------

    def deliver(self, session: Session, stanza: Element) -> None:
        """Write a stanza to one session, unless a ``session/deliver`` hook drops it or holds it.

        A session on another node of the cluster (``session.node``) gets the
        stanza forwarded as is: the ``session/deliver`` hooks run there.
        """
        if session.node:
            session.send(stanza)
            return
        self._write_local(stanza, [(session, stanza)])

    def _write_local(self, stanza: Element, targets: list[Target]) -> None:
        """Run the ``session/deliver`` hooks on copies of ``stanza``, then write what is left."""
        self.stats.sent[stanza.tag] += len(targets)
        if self.hooks.has_handlers(H.SESSION_DELIVER):
            self.hooks.fire_sync(H.SESSION_DELIVER, DeliveryEvent(stanza=stanza, targets=targets))
        for target in targets:
            if target is not None:
                target[0].send(target[1])

    def reply_error(
        self, stanza: Element, err: StanzaError, *, default_from: str | None = None
    ) -> None:
        """Send the error reply for ``stanza`` to its (local) sender, if one is allowed."""
        if not st.can_reply_with_error(stanza):
            return
        reply = st.error_reply(stanza, err, default_from=default_from or self.hosts.domain)
        to = reply.get("to")
        if not to:
            return
        try:
            jid = JID.parse(to)
        except InvalidJID:
            return
        if self.is_remote(jid):
            try:
                sender = JID.parse(reply.get("from", self.hosts.domain))
            except InvalidJID:
                sender = self._domain_jid
            self.post(reply, from_jid=sender, to_jid=jid)
            return
        if jid.resource is None and jid.localpart is not None and reply.tag == st.PRESENCE:
            # A subscription stanza goes out from the user's bare JID (RFC 6121 §3.1.2):
            # its error reaches every available resource, like any presence to the
            # bare JID (§8.5.2.1.1).
            if jid.domain == self.hosts.domain:
                for available in self.sessions.available_of_user(jid.localpart):
                    self.stats.sent[reply.tag] += 1
                    available.send(reply)
            return
        session = self.sessions.get(jid)
        if session is not None:
            self.stats.sent[reply.tag] += 1
            session.send(reply)
        else:
            self._to_component(jid, reply)

    def is_local(self, jid: JID) -> bool:
        """Whether ``jid`` is served here (our domain or a sub-domain)."""
        return not self.is_remote(jid)

    def send_remote(self, stanza: Element, to_jid: JID) -> None:
        """Send a server-made stanza (a reply) to another domain, in order (see :meth:`post`)."""
        try:
            from_jid = JID.parse(stanza.get("from") or self.hosts.domain)
        except InvalidJID:
            return
        self.post(stanza, from_jid=from_jid, to_jid=to_jid)

    def send_from_server(self, session: Session, stanza: Element) -> None:
        """Send a server-generated stanza to one session (no hooks)."""
        self.stats.sent[stanza.tag] += 1
        session.send(stanza)

    # -- IQ -------------------------------------------------------------------

    async def _route_iq(
        self, iq: Element, from_jid: JID, to_jid: JID, origin: Session | None, target: str
    ) -> None:
        iq_type = iq.get("type")
        if iq_type in ("result", "error"):
            self._route_iq_response(iq, from_jid, to_jid, target)
            return
        if target == "full":
            session = self.sessions.get(to_jid)
            if session is None:
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            self.deliver(session, iq)
            return
        if target == "host":
            lookup = IqTarget.HOST
        elif from_jid.bare == to_jid.bare:
            lookup = IqTarget.ACCOUNT
        else:
            lookup = IqTarget.BARE
        payload = iq[0]
        handler = self.iq.lookup(lookup, iq_type or "", payload.tag)
        if handler is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        request = IqRequest(
            stanza=iq, payload=payload, from_jid=from_jid, to_jid=to_jid, origin=origin
        )
        try:
            result = await handler(request)
        except StanzaError:
            raise
        except Exception:
            log.exception("IQ handler for %s failed", payload.tag)
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None
        reply = st.iq_result(iq, result)
        if reply.get("from") is None:
            reply.set("from", str(to_jid))
        self.post(reply, from_jid=to_jid, to_jid=from_jid)

    def _to_component(self, jid: JID, reply: Element) -> None:
        """A reply to what an attached component sent goes back over its stream."""
        sink = self._components.get(jid.domain)
        if sink is not None:
            sink(reply)

    def _route_iq_response(self, iq: Element, from_jid: JID, to_jid: JID, target: str) -> None:
        if target == "full":
            session = self.sessions.get(to_jid)
            if session is not None:
                self.deliver(session, iq)
            return
        iq_id = iq.get("id", "")
        pending = self._pending_iq.get(iq_id)
        # Only the entity we asked may answer: a response from anyone else is ignored.
        if pending is not None and pending[1] == from_jid:
            del self._pending_iq[iq_id]
            if not pending[0].done():
                pending[0].set_result(iq)

    async def query(self, session: Session, iq: Element, *, timeout: float) -> Element:
        """Send a server-originated IQ get/set to a session and await its response.

        Raises:
            TimeoutError: when no response came within ``timeout`` seconds.
        """
        iq_id = "cw-" + secrets.token_hex(8)
        iq.set("id", iq_id)
        iq.set("to", str(session.jid))
        iq.set("from", self.hosts.domain)
        future: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self._pending_iq[iq_id] = (future, session.jid)
        try:
            self.stats.sent[iq.tag] += 1
            session.send(iq)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending_iq.pop(iq_id, None)

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _parse_to(stanza: Element) -> JID | None:
        to = stanza.get("to")
        if to is None:
            return None
        try:
            return JID.parse(to)
        except InvalidJID as exc:
            raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
