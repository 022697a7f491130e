"""Outbound server-to-server connections and the dialer (RFC 6120 §13.7, XEP-0178/0220/0288).

:class:`S2SDialer` implements the kernel's :class:`~carewire.core.s2s.Dialer`:
it resolves the domain (:mod:`carewire.net.s2s_resolve`), connects within
``connect_timeout``, and :class:`OutboundS2S` negotiates TLS, then
authenticates with SASL EXTERNAL when the peer's certificate validates (or is
pinned) and the peer offers it, else with dialback where the policy allows.
Dialback verifications go over an outbound stream to the authoritative
server: an existing one when there is one (piggybacking), else a new one.
"""

from __future__ import annotations

import asyncio
import logging
from xml.etree.ElementTree import Element

from carewire.core.federation import Direction
from carewire.net.s2s_base import S2SConnectionBase, S2SContext
from carewire.net.s2s_resolve import Resolver, Target
from carewire.xmpp import dialback
from carewire.xmpp.errors import StanzaCondition, StreamCondition
from carewire.xmpp.s2s_common import (
    EXTERNAL,
    DialbackReceived,
    FeaturesReceived,
    SaslOutcome,
    StanzaReceived,
    StreamEnded,
    TlsProceed,
)
from carewire.xmpp.s2s_out import S2SOutStream
from carewire.xmpp.s2s_out import State as OutState

log = logging.getLogger(__name__)


class OutboundS2S(S2SConnectionBase):
    """One stream we opened to ``remote`` (for stanzas, or only to verify dialback keys)."""

    direction: Direction = "out"

    def __init__(
        self, ctx: S2SContext, *, remote: str, direct_tls: bool, verify_only: bool = False
    ) -> None:
        super().__init__(ctx)
        self.remote = remote
        self.direct_tls = direct_tls
        self.verify_only = verify_only
        self._stream = S2SOutStream(
            local=ctx.domain, remote=remote, is_tls_active=direct_tls, limits=ctx.limits
        )
        self.ready: asyncio.Future[str] = self._loop.create_future()  # "" or why it failed
        self.auth = "certificate"
        self._verifies: dict[str, asyncio.Future[bool]] = {}
        self._pending: list[tuple[str, str, str]] = []  # (stream id, key, local) to send

    @property
    def stream(self) -> S2SOutStream:
        """The sans-IO stream."""
        return self._stream

    @property
    def can_send(self) -> bool:
        """Stanzas may go out once established."""
        return not self.verify_only

    @property
    def can_verify(self) -> bool:
        """Whether a ``<db:verify/>`` may be sent on this stream now."""
        return not self.is_closing and self._stream.state in (
            OutState.NEGOTIATING,
            OutState.AWAIT_DIALBACK,
            OutState.ESTABLISHED,
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.direct_tls:
            self.start_tls(server_side=False, server_name=self.remote)
        else:
            self._stream.start()
            self.flush()

    def tls_done(self) -> None:
        if self.direct_tls:
            self._stream.start()
        else:
            self._stream.tls_established()
        self.flush()

    def tls_failed(self, reason: str) -> None:
        self._fail(f"TLS failed: {reason}")

    def feed(self, data: bytes) -> None:
        if not data:
            return
        for event in self._stream.receive_data(data):
            if isinstance(event, FeaturesReceived):
                self._features(event)
            elif isinstance(event, TlsProceed):
                self.flush()
                self.start_tls(server_side=False, server_name=self.remote)
            elif isinstance(event, SaslOutcome):
                if not event.is_success:
                    self._after_sasl_failure(event.condition)
            elif isinstance(event, DialbackReceived):
                self._dialback(event.dialback)
            elif isinstance(event, StanzaReceived):
                self.enqueue(event.element)
            elif isinstance(event, StreamEnded):
                self._fail(f"stream closed by the peer ({event.condition or 'no error'})")
                self.flush()
                self.close_transport()
        self.flush()

    def _features(self, f: FeaturesReceived) -> None:
        stream, manager = self._stream, self.ctx.manager
        if not stream.is_tls_active:
            if not f.has_starttls:
                self._give_up("the peer offers no TLS", StreamCondition.POLICY_VIOLATION)
                return
            stream.starttls()
            return
        if stream.is_authenticated:
            stream.established()
            self._established()
            return
        if self.verify_only:
            self._send_pending()
            return
        is_ok, reason = manager.certificate_ok(self.remote, self.peer_cert)
        if is_ok and EXTERNAL in f.mechanisms:
            if f.has_bidi:
                stream.request_bidi()
            stream.authenticate_external()
            return
        self._try_dialback(reason or "the peer does not accept our certificate")

    def _try_dialback(self, why_not_certificate: str) -> None:
        manager = self.ctx.manager
        if not manager.may_dialback(self.remote):
            self._give_up(why_not_certificate, StreamCondition.POLICY_VIOLATION)
            return
        self.auth = "dialback"
        key = dialback.dialback_key(
            manager.secret,
            receiving=self.remote,
            originating=self.ctx.domain,
            stream_id=self._stream.peer_stream_id,
        )
        self._stream.authenticate_dialback(key)
        self._send_pending()

    def _after_sasl_failure(self, condition: str) -> None:
        self._try_dialback(f"SASL EXTERNAL refused ({condition})")

    def _dialback(self, db: dialback.DialbackElement) -> None:
        if db.is_verify:
            waiter = self._verifies.pop(db.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(db.type == "valid")
            return
        if db.type == "valid" and db.from_ == self.remote:
            self._stream.dialback_verified()
            self._established()
            return
        self._give_up(f"dialback refused by {self.remote} ({db.type})", None)

    def _established(self) -> None:
        self.is_reported = True
        if not self.ready.done():
            self.ready.set_result("")
        self.ctx.manager.established(
            self,
            self.remote,
            auth="certificate" if self.auth == "certificate" else "dialback",
            cert=self.peer_cert,
            can_send=True,
        )

    def _give_up(self, reason: str, condition: StreamCondition | None) -> None:
        log.info("s2s to %s: %s", self.remote, reason)
        self._fail(reason)
        self.close(condition, reason if condition else "")

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_result(reason)
        for waiter in self._verifies.values():
            if not waiter.done():
                waiter.set_result(False)
        self._verifies.clear()

    # -- dialback verification (we are the receiving server) ----------------------

    async def verify(self, *, local: str, stream_id: str, key: str) -> bool:
        """Ask the peer whether ``key`` (for its stream ``stream_id`` to ``local``) is its own."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._verifies[stream_id] = waiter
        self._pending.append((stream_id, key, local))
        if self.can_verify:
            self._send_pending()
        return await waiter

    def _send_pending(self) -> None:
        pending, self._pending = self._pending, []
        for stream_id, key, _local in pending:
            self._stream.verify(stream_id=stream_id, key=key)
        self.flush()

    # -- stanzas ----------------------------------------------------------------

    async def handle_stanza(self, element: Element) -> None:
        await self.ctx.manager.receive(self, {self.remote}, element)

    def send_stanza(self, element: Element) -> None:
        """Write a stanza to the peer."""
        if self.is_closing:
            return
        self._stream.send_element(element)
        self.schedule_flush()

    def lost(self) -> None:
        self._fail("connection lost")
        if self.is_reported:
            self.ctx.manager.closed(self, "connection closed")


class S2SDialer:
    """Makes outbound streams for the manager (its :class:`~carewire.core.s2s.Dialer`)."""

    def __init__(self, ctx: S2SContext, resolver: Resolver) -> None:
        self.ctx = ctx
        self.resolver = resolver

    def dial(self, domain: str) -> None:
        """Start connecting to ``domain`` (the manager hears the outcome)."""
        self.ctx.spawn(self._dial(domain), f"s2s-dial-{domain}")

    async def _dial(self, domain: str) -> None:
        manager = self.ctx.manager
        conn: OutboundS2S | None = None
        try:
            async with asyncio.timeout(self.ctx.connect_timeout):
                reason = "no address answered"
                for target in await self.resolver.targets(domain):
                    conn, reason = await self._connect(domain, target, verify_only=False)
                    if conn is not None:
                        reason = await asyncio.shield(conn.ready)
                        break
        except TimeoutError:
            if conn is not None:
                conn.abort()
            manager.dial_failed(domain, StanzaCondition.REMOTE_SERVER_TIMEOUT, "no answer in time")
            return
        if reason:
            manager.dial_failed(domain, StanzaCondition.REMOTE_SERVER_NOT_FOUND, reason)

    async def _connect(
        self, domain: str, target: Target, *, verify_only: bool
    ) -> tuple[OutboundS2S | None, str]:
        loop = asyncio.get_running_loop()
        try:
            host = await self.resolver.address(target.host)
            _transport, conn = await loop.create_connection(
                lambda: OutboundS2S(
                    self.ctx, remote=domain, direct_tls=target.direct_tls, verify_only=verify_only
                ),
                host,
                target.port,
            )
        except OSError as exc:
            log.info("s2s: %s:%d for %s: %s", target.host, target.port, domain, exc)
            return None, f"{target.host}:{target.port}: {exc.strerror or exc}"
        return conn, ""

    async def verify(self, domain: str, *, local: str, stream_id: str, key: str) -> bool:
        """Ask ``domain``'s authoritative server about a dialback key (piggybacking if we can)."""
        for conn in list(self.ctx.connections):
            if isinstance(conn, OutboundS2S) and conn.remote == domain and conn.can_verify:
                return await conn.verify(local=local, stream_id=stream_id, key=key)
        for target in await self.resolver.targets(domain):
            conn, _reason = await self._connect(domain, target, verify_only=True)
            if conn is None:
                continue
            try:
                return await conn.verify(local=local, stream_id=stream_id, key=key)
            finally:
                conn.close()
        return False
