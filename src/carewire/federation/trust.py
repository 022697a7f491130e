"""Trusted domains: the federation policy and pinned peer certificates (docs/federation-admin.md).

Theory of operation. :class:`TrustedDomains` is the
:class:`~carewire.core.federation.FederationSettings` the server-to-server
streams read: :meth:`~TrustedDomains.policy` and :meth:`~TrustedDomains.pinned`
answer from an in-memory snapshot and never await. The snapshot is loaded at
start (:meth:`~TrustedDomains.load`) and reloaded

- at once after every change made through this object (console, API and CLI
  of this process), and
- when the store's change counter moved (:meth:`~TrustedDomains.refresh`,
  polled every few seconds once :meth:`~TrustedDomains.start` ran): a change
  made by another node of a cluster, or by the CLI beside a running server.

After each reload that changed something, the ``on_change`` subscribers are
called (the streams close those the policy no longer allows). Every change is
recorded in the audit trail (``federation.*``), and so is every refused
certificate upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from carewire.clock import Clock
from carewire.core.federation import FederationPolicy
from carewire.errors import ConflictError, NotFoundError
from carewire.federation.domains import lookup_key, remote_domain
from carewire.federation.model import PinnedCertificate, PolicyRecord, TrustSnapshot, TrustStore
from carewire.federation.peer_certificates import normalize_fingerprint, parse_peer_certificate
from carewire.security.audit import AuditEvent, AuditTrail, Outcome
from carewire.security.cert_manager import SYSTEM, Caller
from carewire.security.certificates import CertificateError

log = logging.getLogger(__name__)

#: Seconds between two reads of the change counter (clusters, the CLI beside a server).
REFRESH_INTERVAL = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PinOutcome:
    """A pinned certificate and what its uploader should know about it."""

    pin: PinnedCertificate
    warnings: tuple[str, ...] = ()


class TrustedDomains:
    """The policy and pins: read from a cache, changed (and audited) through the store."""

    def __init__(
        self,
        store: TrustStore,
        audit: AuditTrail,
        clock: Clock,
        *,
        local_domain: str,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        """Keep the policy in ``store``; ``local_domain`` is never a remote domain."""
        self._store = store
        self._audit = audit
        self._clock = clock
        self._local = local_domain
        self._interval = refresh_interval
        self._snapshot = TrustSnapshot()
        self._policy = FederationPolicy()
        self._subscribers: list[Callable[[], None]] = []
        self._poller: asyncio.Task[None] | None = None

    # -- what the streams read (FederationSettings) -----------------------------------

    def policy(self) -> FederationPolicy:
        """The current policy (from the cache)."""
        return self._policy

    def pinned(self, domain: str) -> frozenset[str]:
        """Fingerprints pinned for ``domain`` that have not expired (from the cache)."""
        key = lookup_key(domain)
        pins: Mapping[str, datetime] = self._snapshot.pins.get(key or "", {})
        if not pins:
            return frozenset()
        now = self._clock.now()
        return frozenset(sha for sha, not_after in pins.items() if not_after > now)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each change of the policy or the pins."""
        self._subscribers.append(callback)

    def now(self) -> datetime:
        """The clock's time (pins expire by it)."""
        return self._clock.now()

    # -- the cache ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The change counter the cache was read at."""
        return self._snapshot.version

    async def load(self) -> None:
        """Read the snapshot (at start; the subscribers are not called)."""
        self._set(await self._store.snapshot())

    async def refresh(self) -> bool:
        """Reload when the store's change counter moved; whether it had."""
        if await self._store.version() == self._snapshot.version:
            return False
        await self._reload()
        return True

    async def start(self) -> None:
        """Poll the change counter in the background (owned here; :meth:`close` stops it)."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="federation-trust-refresh")

    async def close(self) -> None:
        """Stop polling."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:  # a supervisor: the next round tries again
                log.exception("reading the federation policy failed")

    def _set(self, snapshot: TrustSnapshot) -> None:
        self._snapshot = snapshot
        self._policy = FederationPolicy(
            allow=snapshot.allow, certificates_only=snapshot.certificates_only
        )

    async def _reload(self) -> None:
        self._set(await self._store.snapshot())
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:  # a subscriber's bug must not undo an administrator's change
                log.exception("a federation policy subscriber failed")

    # -- what administrators read ------------------------------------------------------

    async def read_policy(self) -> PolicyRecord:
        """The stored policy, with who added each partner domain and when."""
        return await self._store.policy()

    async def certificates(self, domain: str | None = None) -> list[PinnedCertificate]:
        """The pinned certificates of ``domain`` (of every domain when None).

        Raises:
            ValidationError: ``domain`` is not a valid remote domain.
        """
        if domain is None:
            return await self._store.pins()
        return await self._store.pins(remote_domain(domain, local=self._local))

    # -- what administrators change ----------------------------------------------------

    async def set_policy(
        self,
        *,
        certificates_only: bool,
        allow: Sequence[str] | None = None,
        by: Caller = SYSTEM,
    ) -> PolicyRecord:
        """Set "certificates only" and, unless ``allow`` is None, replace the allow-list.

        An empty ``allow`` opens federation to every domain.

        Raises:
            ValidationError: A domain of ``allow`` is not valid (nothing changes).
        """
        domains = None
        if allow is not None:
            domains = sorted({remote_domain(d, local=self._local) for d in allow})
        before = self._policy
        await self._store.set_policy(
            certificates_only=certificates_only, allow=domains, by=by.actor, at=self._clock.now()
        )
        await self._reload()
        after = self._policy
        await self._record(
            by,
            "federation.policy",
            details={
                "certificates_only": after.certificates_only,
                "was_certificates_only": before.certificates_only,
                "allow": sorted(after.allow),
                "was_allow": sorted(before.allow),
            },
        )
        log.info("federation policy changed by %s", by.actor)
        return await self._store.policy()

    async def allow(self, domain: str, *, by: Caller = SYSTEM) -> tuple[str, bool]:
        """Put a partner domain on the allow-list (which then restricts federation to it).

        Returns:
            (the normalised domain, whether it was added: False when listed already).

        Raises:
            ValidationError: Not a valid remote domain (``invalid-domain``).
        """
        name = remote_domain(domain, local=self._local)
        added = await self._store.add_allowed(name, by=by.actor, at=self._clock.now())
        if added:
            await self._reload()
            await self._record(by, "federation.allow", target=name)
            log.info("federation: %s allowed by %s", name, by.actor)
        return name, added

    async def disallow(self, domain: str, *, by: Caller = SYSTEM) -> str:
        """Take a partner domain off the allow-list.

        Raises:
            ValidationError: Not a valid remote domain.
            NotFoundError: Not on the allow-list (``unknown-domain``).
            ConflictError: It is the last one (``last-allowed-domain``): removing it
                would open federation to every domain; set the policy instead.
        """
        name = remote_domain(domain, local=self._local)
        removed = await self._store.remove_allowed(
            name, keep_one=True, by=by.actor, at=self._clock.now()
        )
        if removed is False:
            raise NotFoundError(f"{name} is not on the allow-list", code="unknown-domain")
        if removed is None:
            raise ConflictError(
                f"{name} is the last partner domain: without it federation is open to every "
                "domain; to open it, set the policy with an empty allow-list, or turn "
                "federation off",
                code="last-allowed-domain",
            )
        await self._reload()
        await self._record(by, "federation.disallow", target=name)
        log.info("federation: %s disallowed by %s", name, by.actor)
        return name

    async def pin(self, domain: str, data: bytes | str, *, by: Caller = SYSTEM) -> PinOutcome:
        """Pin an uploaded peer certificate for ``domain`` (see :mod:`.peer_certificates`).

        Raises:
            ValidationError: Not a valid remote domain.
            CertificateError: The file is refused (recorded as a failure).
            ConflictError: That certificate is pinned for the domain already.
        """
        name = remote_domain(domain, local=self._local)
        now = self._clock.now()
        try:
            cert = parse_peer_certificate(data, domain=name, now=now)
        except CertificateError as exc:
            await self._record(
                by,
                "federation.pin",
                target=name,
                outcome=Outcome.FAILURE,
                details={"reason": exc.message},
            )
            raise
        pin = PinnedCertificate(
            domain=name,
            sha256=cert.sha256,
            pem=cert.pem,
            subject=cert.subject,
            not_after=cert.not_after,
            uploaded_by=by.actor,
            uploaded_at=now,
        )
        await self._store.add_pin(pin)
        await self._reload()
        warnings = cert.warnings
        if not self._policy.permits(name):
            warnings += (f"{name} is not on the allow-list: streams with it stay refused",)
        await self._record(
            by,
            "federation.pin",
            target=name,
            details={"sha256": pin.sha256, "subject": pin.subject, "not_after": _iso(pin)},
        )
        log.info("federation: certificate %s pinned for %s by %s", pin.sha256, name, by.actor)
        return PinOutcome(pin=pin, warnings=warnings)

    async def unpin(self, domain: str, sha256: str, *, by: Caller = SYSTEM) -> PinnedCertificate:
        """Remove a pinned certificate; streams authenticated by it are closed by the streams.

        Raises:
            ValidationError: Not a valid remote domain.
            CertificateError: Not a SHA-256 fingerprint (``invalid-fingerprint``).
            NotFoundError: No such pin (``unknown-certificate``).
        """
        name = remote_domain(domain, local=self._local)
        fingerprint = normalize_fingerprint(sha256)
        pin = await self._store.remove_pin(name, fingerprint, by=by.actor, at=self._clock.now())
        if pin is None:
            raise NotFoundError(
                f"no certificate with SHA-256 {fingerprint} is pinned for {name}",
                code="unknown-certificate",
            )
        await self._reload()
        await self._record(by, "federation.unpin", target=name, details={"sha256": fingerprint})
        log.info("federation: certificate %s unpinned for %s by %s", fingerprint, name, by.actor)
        return pin

    async def _record(
        self,
        by: Caller,
        action: str,
        *,
        target: str = "federation",
        outcome: Outcome = Outcome.SUCCESS,
        details: Mapping[str, object] | None = None,
    ) -> None:
        await self._audit.record(
            AuditEvent(
                actor=by.actor,
                channel=by.channel,
                action=action,
                target=target,
                outcome=outcome,
                remote_ip=by.remote_ip,
                details=dict(details or {}),
            )
        )


def _iso(pin: PinnedCertificate) -> str:
    return pin.not_after.isoformat()
