"""Inbound server-to-server connections: 5269 (STARTTLS) and direct TLS (XEP-0368), RFC 6120 §13.7.

A peer connects, negotiates TLS, then authenticates with SASL EXTERNAL
(XEP-0178, its certificate must name the domain or be pinned) or Server
Dialback (XEP-0220, verified with its authoritative server through the
manager's dialer). Each decision is the kernel's (:class:`S2SManager`).
"""

from __future__ import annotations

import asyncio
import logging
from xml.etree.ElementTree import Element

from carewire.core.federation import Direction
from carewire.net.s2s_base import S2SConnectionBase, S2SContext
from carewire.xmpp import dialback
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.s2s import S2SInStream
from carewire.xmpp.s2s import State as InState
from carewire.xmpp.s2s_common import (
    DialbackReceived,
    ExternalAuthRequested,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    StreamStarted,
)

log = logging.getLogger(__name__)


class InboundS2S(S2SConnectionBase):
    """One stream a peer server opened to us."""

    direction: Direction = "in"

    def __init__(self, ctx: S2SContext, *, direct_tls: bool) -> None:
        super().__init__(ctx)
        self.direct_tls = direct_tls
        self._stream = S2SInStream(
            domains_served=ctx.domains_served, is_tls_active=direct_tls, limits=ctx.limits
        )
        self._auth_timer: asyncio.TimerHandle | None = None

    @property
    def stream(self) -> S2SInStream:
        """The sans-IO stream."""
        return self._stream

    @property
    def can_send(self) -> bool:
        """Stanzas may go out on this stream (XEP-0288 bidirectional, certificate-authenticated)."""
        return self._stream.is_bidi

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._auth_timer = self._loop.call_later(self.ctx.auth_timeout, self._auth_timed_out)
        if self.direct_tls:
            self.start_tls(server_side=True)

    def tls_done(self) -> None:
        if not self.direct_tls:
            self._stream.tls_established()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        for event in self._stream.receive_data(data):
            if isinstance(event, StreamStarted):
                self._started(event)
            elif isinstance(event, StartTlsRequested):
                self.flush()
                self.start_tls(server_side=True)
            elif isinstance(event, ExternalAuthRequested):
                self._external(event.authzid or self._stream.peer)
            elif isinstance(event, DialbackReceived):
                self._dialback(event.dialback)
            elif isinstance(event, StanzaReceived):
                self.enqueue(event.element)
            elif isinstance(event, StreamEnded):
                self._ended(event)
        self.flush()

    def _started(self, event: StreamStarted) -> None:
        stream, manager = self._stream, self.ctx.manager
        if stream.state is InState.AWAIT_AUTH:
            refusal = manager.refusal(event.from_) if event.from_ else None
            if refusal is not None:
                self._refuse(event.from_, refusal, StreamCondition.POLICY_VIOLATION)
                return
            is_ok = event.from_ != "" and manager.certificate_ok(event.from_, self.peer_cert)[0]
            stream.send_auth_features(external=is_ok, dialback=manager.may_dialback(event.from_))
        elif stream.state is InState.ESTABLISHED:
            # The stream restarted after SASL EXTERNAL: it is ready.
            self._established(stream.peer, "certificate")

    def _refuse(self, domain: str, reason: str, condition: StreamCondition) -> None:
        fingerprint = self.peer_cert.fingerprint if self.peer_cert else ""
        self.ctx.manager.refused(
            domain, remote_ip=self.remote_ip, reason=reason, fingerprint=fingerprint
        )
        self.close(condition, reason)

    def _external(self, domain: str) -> None:
        manager = self.ctx.manager
        refusal = manager.refusal(domain)
        if refusal is not None or domain != self._stream.peer:
            self._stream.sasl_failure("not-authorized")
            self._refuse(
                domain, refusal or "authzid differs from the stream", StreamCondition.NOT_AUTHORIZED
            )
            return
        is_ok, reason = manager.certificate_ok(domain, self.peer_cert)
        if not is_ok:
            self._stream.sasl_failure("not-authorized")
            manager.refused(domain, remote_ip=self.remote_ip, reason=reason)
            return
        self._stream.sasl_success(domain)

    def _dialback(self, db: dialback.DialbackElement) -> None:
        stream, manager = self._stream, self.ctx.manager
        if db.type:
            return  # answers come on streams we opened; ignore one here
        if db.to not in self.ctx.domains_served:
            stream.dialback_refused(db, "item-not-found")
            return
        if db.is_verify:
            # We are the authoritative server (XEP-0220 §2.1.3).
            is_valid = dialback.is_valid_key(
                manager.secret,
                db.key,
                receiving=db.from_,
                originating=db.to,
                stream_id=db.stream_id,
            )
            stream.send_nonza(dialback.answer(db, is_valid=is_valid))
            return
        refusal = manager.refusal(db.from_)
        if refusal is not None or not manager.may_dialback(db.from_):
            stream.dialback_refused(db, "not-allowed")
            self._refuse(
                db.from_, refusal or "dialback is not allowed", StreamCondition.NOT_AUTHORIZED
            )
            return
        self.ctx.spawn(self._verify(db), "s2s-dialback-verify")

    async def _verify(self, db: dialback.DialbackElement) -> None:
        manager = self.ctx.manager
        dialer = manager.dialer
        is_valid = False
        if dialer is not None:
            try:
                is_valid = await asyncio.wait_for(
                    dialer.verify(
                        db.from_, local=db.to, stream_id=self._stream.stream_id, key=db.key
                    ),
                    self.ctx.verify_timeout,
                )
            except (TimeoutError, OSError) as exc:
                log.info("s2s: dialback verification with %s failed: %s", db.from_, exc)
        if self.is_closing:
            return
        if is_valid:
            self._stream.dialback_valid(db)
            self.flush()
            self._established(db.from_, "dialback")
            return
        self._stream.send_nonza(dialback.answer(db, is_valid=False))
        self._refuse(db.from_, "the dialback key did not verify", StreamCondition.NOT_AUTHORIZED)

    def _established(self, domain: str, auth: str) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self.is_reported = True
        self.ctx.manager.established(
            self,
            domain,
            auth="certificate" if auth == "certificate" else "dialback",
            cert=self.peer_cert,
            can_send=self.can_send and auth == "certificate",
        )

    def _ended(self, event: StreamEnded) -> None:
        if event.condition is not None:
            log.info(
                "s2s stream from %s closed: %s %s", self.remote_ip, event.condition, event.text
            )
        self.flush()
        self.close_transport()

    def _auth_timed_out(self) -> None:
        self._auth_timer = None
        if not self._stream.domains:
            self.close(StreamCondition.CONNECTION_TIMEOUT, "authenticate sooner")

    async def handle_stanza(self, element: Element) -> None:
        await self.ctx.manager.receive(self, self._stream.domains, element)

    def send_stanza(self, element: Element) -> None:
        """Write a stanza to the peer (bidirectional streams only)."""
        if self.is_closing:
            return
        self._stream.send_element(element)
        self.schedule_flush()

    def lost(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self.is_reported:
            self.ctx.manager.closed(self, "connection closed")
