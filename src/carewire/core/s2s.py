"""The server-to-server manager: stanzas to and from other domains (RFC 6120 §8, §13.7).

Theory of operation: :class:`S2SManager` is the kernel's
:class:`~carewire.core.federation.RemoteRouter`. It never touches sockets:
the network layer implements :class:`Dialer` (open an outgoing stream to a
domain, ask an authoritative server to verify a dialback key) and each
stream is an :class:`S2SLink`. The network layer reports back through
:meth:`S2SManager.established`, :meth:`S2SManager.dial_failed`,
:meth:`S2SManager.closed` and hands inbound stanzas to
:meth:`S2SManager.receive`.

Per remote domain the manager keeps a bounded queue of stanzas waiting for a
stream. When a dial fails, everything queued bounces to the local senders
with ``remote-server-not-found`` (or ``remote-server-timeout``), through
:meth:`Router.route` so features (delivery tracking) see the error; for the
back-off period after a failure new stanzas bounce at once. Policy (allow-list,
certificates only) is read from :class:`FederationSettings` on every decision,
and streams no longer allowed are closed when it changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from carewire.clock import Clock
from carewire.core.federation import (
    AuthMethod,
    Direction,
    DomainStatus,
    FederationSettings,
    FederationStatusSink,
)
from carewire.core.hosts import Hosts
from carewire.core.router import Router
from carewire.core.s2s_policy import PeerCertificate, RateBucket, certificate_verdict
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class S2SOptions:
    """The ``[s2s]`` settings the kernel side needs."""

    queue_limit: int = 1000  # stanzas waiting per domain while a stream is made
    idle_timeout: float = 600.0  # seconds without traffic before a stream is closed
    allow_dialback: bool = True  # [s2s] dialback; the policy's certificates_only also forbids it
    rate: float = 500.0  # stanzas per second from one domain (0: unlimited) …
    burst: float = 2000.0  # … after a burst of this many
    retry_min: float = 2.0  # back-off after a failed dial, doubling …
    retry_max: float = 300.0  # … up to this


class S2SLink(Protocol):
    """One established server stream, as the network layer holds it."""

    direction: Direction
    remote_ip: str

    def send_stanza(self, element: Element) -> None:
        """Write a stanza (kernel namespace)."""
        ...

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream (with a stream error when ``condition``)."""
        ...


class Dialer(Protocol):
    """Opens outgoing streams (network layer)."""

    def dial(self, domain: str) -> None:
        """Start connecting to ``domain``; the outcome comes back as established/dial_failed."""
        ...

    async def verify(self, domain: str, *, local: str, stream_id: str, key: str) -> bool:
        """Ask ``domain``'s authoritative server whether ``key`` is its (XEP-0220 §2.1.2)."""
        ...


@dataclass(slots=True)
class _LinkState:
    domain: str
    auth: AuthMethod
    cert: PeerCertificate | None
    is_pinned: bool
    last_active: float
    can_send: bool = False
    stanzas_in: int = 0
    stanzas_out: int = 0


@dataclass(slots=True)
class _Remote:
    """What we hold for one remote domain."""

    queue: deque[tuple[Element, JID, JID]] = field(default_factory=deque)
    out: S2SLink | None = None  # the stream stanzas to the domain go on
    is_dialing: bool = False
    retry_at: float = 0.0
    backoff: float = 0.0
    last_error: tuple[StanzaCondition, str] | None = None
    bucket: RateBucket | None = None


class S2SManager:
    """Federation for one server: the remote router, policy decisions, bounces, audit."""

    def __init__(
        self,
        *,
        router: Router,
        hosts: Hosts,
        settings: FederationSettings,
        clock: Clock,
        options: S2SOptions,
        secret: bytes,
        status: FederationStatusSink | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.router = router
        self.hosts = hosts
        self.settings = settings
        self.clock = clock
        self.options = options
        self.secret = secret  # dialback keys (XEP-0185)
        self.status = status
        self.audit = audit
        self.dialer: Dialer | None = None
        self._remotes: dict[str, _Remote] = {}
        self._links: dict[S2SLink, _LinkState] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        settings.on_change(self.policy_changed)

    # -- RemoteRouter -----------------------------------------------------------

    async def send(self, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        """Send ``stanza`` to ``to_jid.domain``, queueing while a stream is made."""
        domain = to_jid.domain
        if not self.settings.policy().permits(domain):
            self.record("s2s.refused", domain, outcome=Outcome.FAILURE, reason="not allowed")
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"{domain} is not allowed")
        remote = self._remote(domain)
        if remote.out is not None:
            self._write(remote.out, stanza)
            return
        if not remote.is_dialing and self.clock.monotonic() < remote.retry_at:
            cond, text = remote.last_error or (StanzaCondition.REMOTE_SERVER_NOT_FOUND, "")
            raise StanzaError(cond, text)
        if len(remote.queue) >= self.options.queue_limit:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, f"too many stanzas for {domain}")
        remote.queue.append((stanza, from_jid, to_jid))
        if not remote.is_dialing:
            if self.dialer is None:
                remote.queue.pop()
                raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND)
            remote.is_dialing = True
            self.dialer.dial(domain)
        if len(remote.queue) == 1:
            self._report(domain, "out", connected=False)

    def _remote(self, domain: str) -> _Remote:
        remote = self._remotes.get(domain)
        if remote is None:
            remote = self._remotes[domain] = _Remote()
        return remote

    def _write(self, link: S2SLink, stanza: Element) -> None:
        state = self._links.get(link)
        if state is not None:
            state.stanzas_out += 1
            state.last_active = self.clock.monotonic()
        link.send_stanza(stanza)

    # -- decisions the network layer asks for -------------------------------------

    def refusal(self, domain: str) -> str | None:
        """Why streams with ``domain`` are refused (None: allowed)."""
        if not domain or domain == self.hosts.domain or domain in self.hosts.subdomains:
            return "not a remote domain"
        if not self.settings.policy().permits(domain):
            return "not on the allow-list"
        return None

    def certificate_ok(self, domain: str, cert: PeerCertificate | None) -> tuple[bool, str]:
        """Whether ``cert`` authenticates ``domain`` (trusted and naming it, or pinned)."""
        verdict = certificate_verdict(cert, domain, self.settings.pinned(domain))
        return verdict.is_ok, verdict.reason

    def may_dialback(self, domain: str) -> bool:
        """Whether Server Dialback may authenticate ``domain``."""
        return self.options.allow_dialback and not self.settings.policy().certificates_only

    # -- lifecycle reports from the network layer -----------------------------------

    def established(
        self,
        link: S2SLink,
        domain: str,
        *,
        auth: AuthMethod,
        cert: PeerCertificate | None,
        can_send: bool,
    ) -> None:
        """A stream with ``domain`` is authenticated; ``can_send``: stanzas may go out on it."""
        pins = self.settings.pinned(domain)
        self._links[link] = _LinkState(
            domain=domain,
            auth=auth,
            cert=cert,
            is_pinned=cert is not None and cert.fingerprint in pins,
            last_active=self.clock.monotonic(),
            can_send=can_send,
        )
        self.record(
            "s2s.established",
            domain,
            link=link,
            auth=auth,
            fingerprint=cert.fingerprint if cert else "",
        )
        log.info("s2s %s stream with %s established (%s)", link.direction, domain, auth)
        remote = self._remote(domain)
        if can_send:
            if remote.out is None or link.direction == "out":
                remote.out = link
            remote.is_dialing = remote.is_dialing and link.direction != "out"
            remote.backoff, remote.retry_at, remote.last_error = 0.0, 0.0, None
            queued, remote.queue = remote.queue, deque()
            for stanza, _from, _to in queued:
                self._write(link, stanza)
        self._report(domain, link.direction, connected=True, link=link)

    def dial_failed(self, domain: str, condition: StanzaCondition, reason: str) -> None:
        """An outgoing stream could not be made: bounce what waits, back off."""
        remote = self._remote(domain)
        remote.is_dialing = False
        remote.backoff = min(
            self.options.retry_max, max(self.options.retry_min, remote.backoff * 2)
        )
        remote.retry_at = self.clock.monotonic() + remote.backoff
        remote.last_error = (condition, reason)
        self.record("s2s.failed", domain, outcome=Outcome.FAILURE, reason=reason)
        log.info("s2s to %s failed (%s): %s", domain, condition.value, reason)
        queued, remote.queue = remote.queue, deque()
        for stanza, from_jid, to_jid in queued:
            self.bounce(stanza, from_jid, to_jid, StanzaError(condition, reason))
        self._report(domain, "out", connected=False, error=reason)

    def closed(self, link: S2SLink, reason: str = "") -> None:
        """A stream ended (whatever its state)."""
        state = self._links.pop(link, None)
        if state is None:
            return
        remote = self._remote(state.domain)
        if remote.out is link:
            remote.out = next(
                (
                    other
                    for other, s in self._links.items()
                    if s.domain == state.domain and s.can_send
                ),
                None,
            )
        self.record("s2s.closed", state.domain, link=link, reason=reason)
        self._report(state.domain, link.direction, connected=False, error=reason or None)

    def refused(self, domain: str, *, remote_ip: str, reason: str, fingerprint: str = "") -> None:
        """A peer was refused (policy, certificate, dialback key): audited."""
        self.record(
            "s2s.refused",
            domain,
            outcome=Outcome.FAILURE,
            remote_ip=remote_ip,
            reason=reason,
            fingerprint=fingerprint,
        )
        self._report(domain, "in", connected=False, error=reason)

    # -- inbound stanzas ------------------------------------------------------------

    async def receive(self, link: S2SLink, domains: set[str], stanza: Element) -> None:
        """Admit a stanza from a stream authenticated for ``domains`` and route it.

        Closes the stream (never just drops the stanza) on an address the
        stream may not use (RFC 6120 §4.9.3.9 invalid-from, §4.9.3.6 host-unknown)
        or a domain over its rate (policy-violation).
        """
        try:
            from_jid = JID.parse(stanza.get("from") or "")
            to_jid = JID.parse(stanza.get("to") or "")
        except InvalidJID:
            link.close(StreamCondition.IMPROPER_ADDRESSING, "from and to must be valid JIDs")
            return
        if from_jid.domain not in domains:
            link.close(StreamCondition.INVALID_FROM, f"{from_jid.domain} is not authenticated")
            return
        if to_jid.domain != self.hosts.domain and to_jid.domain not in self.hosts.subdomains:
            link.close(StreamCondition.HOST_UNKNOWN, f"{to_jid.domain} is not served here")
            return
        now = self.clock.monotonic()
        state = self._links.get(link)
        if state is not None:
            state.stanzas_in += 1
            state.last_active = now
        remote = self._remote(from_jid.domain)
        if remote.bucket is None:
            remote.bucket = RateBucket(self.options.rate, self.options.burst)
        if not remote.bucket.take(now):
            log.warning("s2s: %s exceeds its stanza rate; closing its stream", from_jid.domain)
            self.record("s2s.refused", from_jid.domain, outcome=Outcome.FAILURE, reason="rate")
            link.close(StreamCondition.POLICY_VIOLATION, "too many stanzas")
            return
        await self.router.route(stanza, from_jid=from_jid, to_jid=to_jid, origin=None)

    # -- bounces, policy, idle --------------------------------------------------------

    def bounce(self, stanza: Element, from_jid: JID, to_jid: JID, err: StanzaError) -> None:
        """Return ``stanza`` to its local sender as an error (through the router's hooks)."""
        if not st.can_reply_with_error(stanza):
            return
        reply = st.error_reply(stanza, err, default_from=to_jid.domain)
        self.spawn(self.router.route(reply, from_jid=to_jid, to_jid=from_jid), "s2s-bounce")

    def policy_changed(self) -> None:
        """Close the streams the new policy or pins no longer allow."""
        policy = self.settings.policy()
        for link, state in list(self._links.items()):
            reason = ""
            if not policy.permits(state.domain):
                reason = f"{state.domain} is no longer allowed"
            elif state.auth == "dialback" and (
                policy.certificates_only or not self.may_dialback(state.domain)
            ):
                reason = "certificates are now required"
            elif (
                state.is_pinned
                and (
                    state.cert is None
                    or state.cert.fingerprint not in self.settings.pinned(state.domain)
                )
                and not certificate_verdict(state.cert, state.domain, frozenset()).is_ok
            ):
                reason = "its certificate is no longer pinned"
            if reason:
                log.info("s2s: closing the stream with %s: %s", state.domain, reason)
                link.close(StreamCondition.POLICY_VIOLATION, reason)
                self.closed(link, reason)

    def sweep_idle(self) -> int:
        """Close streams idle for longer than ``idle_timeout``; returns how many."""
        now = self.clock.monotonic()
        idle = [
            link
            for link, state in self._links.items()
            if now - state.last_active > self.options.idle_timeout
        ]
        for link in idle:
            link.close()
            self.closed(link, "idle")
        return len(idle)

    async def run(self, interval: float | None = None) -> None:
        """Close idle streams periodically (owned by the server)."""
        period = interval or max(1.0, self.options.idle_timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep_idle()

    def links(self) -> dict[S2SLink, str]:
        """Every authenticated stream and its domain."""
        return {link: state.domain for link, state in self._links.items()}

    def queued(self, domain: str) -> int:
        """Stanzas waiting for a stream to ``domain``."""
        remote = self._remotes.get(domain)
        return len(remote.queue) if remote is not None else 0

    # -- audit and status ---------------------------------------------------------------

    def record(
        self,
        action: str,
        domain: str,
        *,
        link: S2SLink | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        remote_ip: str = "",
        **details: str,
    ) -> None:
        """Append an audit event (written behind, never blocks a stream)."""
        if self.audit is None:
            return
        if link is not None:
            details["direction"] = link.direction
            remote_ip = remote_ip or link.remote_ip
        event = AuditEvent(
            actor=f"s2s:{domain}",
            channel=Channel.XMPP,
            action=action,
            target=domain,
            outcome=outcome,
            remote_ip=remote_ip,
            details={k: v for k, v in details.items() if v},
        )
        self.spawn(self.audit.record(event), "s2s-audit")

    def _report(
        self,
        domain: str,
        direction: Direction,
        *,
        connected: bool,
        link: S2SLink | None = None,
        error: str | None = None,
    ) -> None:
        if self.status is None:
            return
        state = self._links.get(link) if link is not None else None
        now = self.clock.now()
        status = DomainStatus(
            domain=domain,
            direction=direction,
            connected=connected,
            since=now,
            queued=self.queued(domain),
            last_error=error,
            last_error_at=now if error else None,
        )
        if state is not None:
            cert = state.cert
            status = replace(
                status,
                auth=state.auth,
                fingerprint=cert.fingerprint if cert else None,
                certificate_not_after=cert.not_after if cert else None,
                stanzas_in=state.stanzas_in,
                stanzas_out=state.stanzas_out,
            )
        self.status.update(status)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` as a task this manager owns."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("s2s task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        """Close every stream (shutdown) and wait for pending audit writes."""
        for link in list(self._links):
            link.close(StreamCondition.SYSTEM_SHUTDOWN, "the server is shutting down")
            self.closed(link, "shutdown")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
