"""Federation policy in the kernel: static settings, peer certificates, the per-domain rate.

:class:`StaticFederationSettings` is the :class:`~carewire.core.federation.FederationSettings`
used when the composition root supplies none (tests, and the default: open to
any domain). :class:`PeerCertificate` is what the network layer learnt of a
peer's certificate; :func:`certificate_verdict` decides whether it
authenticates a domain (XEP-0178 §3, RFC 6125 §6.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from carewire.core.federation import FederationPolicy


class StaticFederationSettings:
    """Policy and pins held in memory; :meth:`update` notifies the listeners."""

    def __init__(
        self,
        policy: FederationPolicy | None = None,
        pins: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self._policy = policy or FederationPolicy()
        self._pins = dict(pins or {})
        self._listeners: list[Callable[[], None]] = []

    def policy(self) -> FederationPolicy:
        """The current policy."""
        return self._policy

    def pinned(self, domain: str) -> frozenset[str]:
        """Fingerprints pinned for ``domain``."""
        return self._pins.get(domain.lower(), frozenset())

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after :meth:`update`."""
        self._listeners.append(callback)

    def update(
        self,
        policy: FederationPolicy | None = None,
        pins: dict[str, frozenset[str]] | None = None,
    ) -> None:
        """Replace the policy and/or the pins, then tell the listeners."""
        if policy is not None:
            self._policy = policy
        if pins is not None:
            self._pins = dict(pins)
        for callback in list(self._listeners):
            callback()


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerCertificate:
    """A peer's end-entity certificate, as checked by the TLS layer."""

    fingerprint: str  # SHA-256 of the DER, lowercase hex
    identities: frozenset[str] = frozenset()  # SAN dNSName, SRVName (service stripped), xmppAddr
    is_trusted: bool = False  # the chain validated (system store or the hospital CA), in date
    is_expired: bool = False  # outside its validity period (refused even when pinned)
    error: str = ""  # why it is not trusted
    not_after: datetime | None = None

    def names(self, domain: str) -> bool:
        """Whether the certificate names ``domain`` (RFC 6125 §6.4: one-label wildcards)."""
        domain = domain.lower().rstrip(".")
        if domain in self.identities:
            return True
        head, _, rest = domain.partition(".")
        return bool(head and rest) and f"*.{rest}" in self.identities


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateVerdict:
    """Whether a certificate authenticates a domain, and why (for the audit and status)."""

    is_ok: bool
    is_pinned: bool = False
    reason: str = ""


def certificate_verdict(
    cert: PeerCertificate | None, domain: str, pins: frozenset[str]
) -> CertificateVerdict:
    """XEP-0178: a trusted certificate naming ``domain``, or one pinned for it."""
    if cert is None:
        return CertificateVerdict(is_ok=False, reason="no certificate")
    if cert.is_expired:
        return CertificateVerdict(is_ok=False, reason=cert.error or "expired certificate")
    if cert.fingerprint in pins:
        return CertificateVerdict(is_ok=True, is_pinned=True)
    if not cert.is_trusted:
        return CertificateVerdict(is_ok=False, reason=cert.error or "untrusted certificate")
    if not cert.names(domain):
        return CertificateVerdict(is_ok=False, reason=f"the certificate does not name {domain}")
    return CertificateVerdict(is_ok=True)


@dataclass(slots=True)
class RateBucket:
    """A token bucket on stanzas from one domain (the c2s limiter's shape, per domain)."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    at: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one token at ``now``; False when the domain is over its rate."""
        if self.rate <= 0:
            return True
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
