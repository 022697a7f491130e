"""External components (XEP-0114): who may attach, who is attached, and what their streams say.

Theory of operation: the operator configures each component domain with one
shared secret; the domains are part of :class:`~carewire.core.hosts.Hosts`
from the start, so stanzas for a component that is away fail with
``service-unavailable`` instead of looking like another server's.

The network driver owns the socket and a
:class:`~carewire.xmpp.component.ComponentStream`; it hands every stream
event to :meth:`ComponentConnection.handle`, in order. This class makes the
decisions the sans-IO stream cannot: it checks the handshake against the
secret (in constant time), refuses a second stream for an attached domain
(``conflict``: the component already there keeps its stream; a dead one is
noticed by TCP keepalive and the handshake of its successor then succeeds),
attaches the domain to the router, and routes what the component sends like
any stanza (to local users, the server, other services, other components).

Connects, disconnects and refusals go to the audit trail (the facility the
login audit ends in); the secret and the digest never reach it or the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol
from xml.etree.ElementTree import Element

from carewire.core.router import Router
from carewire.security.audit import AuditEvent, Channel, Outcome
from carewire.xmpp import stanza as st
from carewire.xmpp.component import (
    ComponentEvent,
    ComponentOpened,
    ComponentStream,
    ComponentStreamConfig,
    HandshakeReceived,
    StanzaReceived,
    StreamEnded,
    is_valid_handshake,
)
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import ParserLimits

log = logging.getLogger(__name__)


class AuditRecorder(Protocol):
    """Where connects, disconnects and refusals are recorded (the audit trail)."""

    async def record(self, event: AuditEvent) -> object:
        """Append ``event`` durably."""
        ...


class ComponentPort(Protocol):
    """What the network driver of one component connection offers the kernel."""

    def send_element(self, element: Element) -> None:
        """Queue a stanza for the component (written at the end of this loop iteration)."""
        ...


class ComponentHub:
    """The configured components of this server and the streams attached for them."""

    def __init__(
        self,
        *,
        router: Router,
        secrets: Mapping[str, str],
        audit: AuditRecorder | None = None,
        limits: ParserLimits | None = None,
    ) -> None:
        unknown = set(secrets) - router.hosts.components
        if unknown:
            raise ValueError(f"not configured as component domains: {sorted(unknown)}")
        self.router = router
        self.audit = audit
        self._secrets = dict(secrets)
        self._attached: dict[str, ComponentConnection] = {}
        self._config = ComponentStreamConfig(
            domains=frozenset(secrets), limits=limits or ParserLimits()
        )

    @property
    def domains(self) -> frozenset[str]:
        """The component domains that may attach."""
        return self._config.domains

    @property
    def attached(self) -> tuple[str, ...]:
        """The component domains attached now."""
        return tuple(sorted(self._attached))

    def connection(self, port: ComponentPort, *, remote_ip: str) -> ComponentConnection:
        """The kernel side of a new connection, with its stream."""
        stream = ComponentStream(self._config)
        return ComponentConnection(hub=self, stream=stream, port=port, remote_ip=remote_ip)

    def verify(self, stream: ComponentStream, digest: str) -> bool:
        """Whether ``digest`` is the handshake of the secret of ``stream``'s domain."""
        secret = self._secrets.get(stream.domain)
        return secret is not None and is_valid_handshake(stream.stream_id, secret, digest)

    def claim(self, conn: ComponentConnection) -> bool:
        """Attach ``conn``'s domain to the router; False when another stream holds it."""
        domain = conn.stream.domain
        if domain in self._attached:
            return False
        self._attached[domain] = conn
        self.router.attach_component(domain, conn.send)
        return True

    def release(self, conn: ComponentConnection) -> None:
        """Detach ``conn``'s domain: stanzas to it fail with service-unavailable again."""
        domain = conn.stream.domain
        if self._attached.get(domain) is conn:
            del self._attached[domain]
            self.router.detach_component(domain, conn.send)

    async def record(
        self, action: str, domain: str, remote_ip: str, *, ok: bool, **details: object
    ) -> None:
        """Append one component event to the audit trail (when there is one)."""
        if self.audit is None:
            return
        event = AuditEvent(
            actor=f"component:{domain}" if domain else "component",
            channel=Channel.XMPP,
            action=action,
            target=domain,
            outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
            remote_ip=remote_ip,
            details=details,
        )
        await self.audit.record(event)


class ComponentConnection:
    """Kernel-side state of one component connection."""

    def __init__(
        self, *, hub: ComponentHub, stream: ComponentStream, port: ComponentPort, remote_ip: str
    ) -> None:
        self.hub = hub
        self.stream = stream
        self.port = port
        self.remote_ip = remote_ip
        self.is_attached = False
        self.is_gone = False  # the connection was lost (events still queued are moot)
        self.stanzas_in = 0
        self.stanzas_out = 0
        self._is_refusal_recorded = False

    async def handle(self, event: ComponentEvent) -> None:
        """Act on one stream event (the driver writes what the stream queued afterwards)."""
        if isinstance(event, StanzaReceived):
            if self.is_attached:  # stanzas pipelined behind a refused handshake are dropped
                self.stanzas_in += 1
                await self._route(event.element)
        elif isinstance(event, HandshakeReceived):
            await self._on_handshake(event.digest)
        elif isinstance(event, ComponentOpened):
            log.debug("component stream for %s from %s", event.domain, self.remote_ip)
        elif isinstance(event, StreamEnded) and not self.is_attached and event.condition:
            await self._refused(event.condition)

    async def _on_handshake(self, digest: str) -> None:
        hub, stream = self.hub, self.stream
        domain = stream.domain
        if self.is_gone:
            return  # never attach a connection that is already lost
        if not hub.verify(stream, digest):
            log.warning("component %s from %s: wrong handshake", domain, self.remote_ip)
            stream.close(StreamCondition.NOT_AUTHORIZED, "the handshake does not match")
            await self._refused(StreamCondition.NOT_AUTHORIZED)
            return
        if not hub.claim(self):
            log.warning("component %s from %s: attached already", domain, self.remote_ip)
            stream.close(StreamCondition.CONFLICT, "this component is connected already")
            await self._refused(StreamCondition.CONFLICT)
            return
        stream.accept()
        self.is_attached = True
        log.info("component %s attached from %s", domain, self.remote_ip)
        await hub.record("component.connect", domain, self.remote_ip, ok=True)

    async def _refused(self, condition: StreamCondition) -> None:
        if self._is_refusal_recorded:
            return
        self._is_refusal_recorded = True
        await self.hub.record(
            "component.refused",
            self.stream.domain,
            self.remote_ip,
            ok=False,
            reason=condition.value,
        )

    def send(self, element: Element) -> None:
        """The router's sink for this component's domain."""
        self.stanzas_out += 1
        self.port.send_element(element)

    async def _route(self, stanza: Element) -> None:
        """Route a stanza the component sent (its ``from`` was checked by the stream)."""
        router = self.hub.router
        try:
            from_jid = JID.parse(stanza.get("from", ""))
            to = stanza.get("to")
            if to is None:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "components must address stanzas")
            try:
                to_jid = JID.parse(to)
            except InvalidJID as exc:
                raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
            if stanza.tag == st.IQ:
                st.validate_iq(stanza)
        except StanzaError as err:
            router.reply_error(stanza, err, default_from=self.stream.domain)
            return
        log.debug("%s from component %s", st.stanza_kind(stanza), from_jid)
        await router.route(stanza, from_jid=from_jid, to_jid=to_jid)

    async def closed(self) -> None:
        """The connection is gone: detach the domain (stanzas to it now fail) and audit."""
        self.is_gone = True
        if not self.is_attached:
            return
        self.is_attached = False
        domain = self.stream.domain
        self.hub.release(self)
        condition = self.stream.end_condition
        log.info("component %s detached (%s)", domain, condition or "closed")
        await self.hub.record(
            "component.disconnect",
            domain,
            self.remote_ip,
            ok=True,
            reason=condition.value if condition else "closed",
            stanzas_in=self.stanzas_in,
            stanzas_out=self.stanzas_out,
        )
