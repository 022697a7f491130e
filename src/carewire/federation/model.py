"""Federation administration's records and the shape of its storage (docs/federation-admin.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from carewire.core.federation import DomainStatus

#: The one row of the policy table.
POLICY_ROW = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedDomain:
    """A partner domain on the allow-list, and who added it when."""

    domain: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedCertificate:
    """A peer certificate uploaded for a remote domain.

    Attributes:
        domain: The remote domain (normalised: lower-case U-labels).
        sha256: SHA-256 of the DER certificate, lowercase hex without colons.
        pem: The certificate (PEM, as re-encoded from what was uploaded).
        subject: Its subject (RFC 4514).
        not_after: When it expires (UTC).
        uploaded_by: Who uploaded it (``console:alice``, ``api:token``, ``cli:root``).
        uploaded_at: When.
    """

    domain: str
    sha256: str
    pem: str
    subject: str
    not_after: datetime
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRecord:
    """The policy as stored: the switch, the allow-list, the change counter, the last change."""

    certificates_only: bool = False
    allow: tuple[AllowedDomain, ...] = ()
    version: int = 0
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustSnapshot:
    """Everything the streams read, in one consistent read.

    Attributes:
        version: The change counter it was read at.
        certificates_only: Only certificate authentication.
        allow: Partner domains (empty: any).
        pins: Per domain, each pinned certificate's fingerprint and expiry.
    """

    version: int = 0
    certificates_only: bool = False
    allow: frozenset[str] = frozenset()
    pins: Mapping[str, Mapping[str, datetime]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportedStatus:
    """A stream's last report, and when it was written."""

    status: DomainStatus
    updated_at: datetime


class TrustStore(Protocol):
    """Where the policy, the allow-list and the pins are kept.

    Every write increments the policy's ``version`` in the same transaction.
    """

    async def snapshot(self) -> TrustSnapshot:
        """The policy, allow-list and pins' fingerprints at one version."""
        ...

    async def version(self) -> int:
        """The change counter alone (one indexed read)."""
        ...

    async def policy(self) -> PolicyRecord:
        """The policy with who added each partner domain."""
        ...

    async def set_policy(
        self, *, certificates_only: bool, allow: Sequence[str] | None, by: str, at: datetime
    ) -> None:
        """Set the switch and, unless ``allow`` is None, replace the allow-list."""
        ...

    async def add_allowed(self, domain: str, *, by: str, at: datetime) -> bool:
        """Add a partner domain; False when it was there already (nothing changes)."""
        ...

    async def remove_allowed(
        self, domain: str, *, keep_one: bool, by: str, at: datetime
    ) -> bool | None:
        """Remove a partner domain; False when it was not there.

        None (and nothing removed) when ``keep_one`` and it is the last one.
        """
        ...

    async def add_pin(self, pin: PinnedCertificate) -> None:
        """Store a pinned certificate (ConflictError: pinned for that domain already)."""
        ...

    async def remove_pin(
        self, domain: str, sha256: str, *, by: str, at: datetime
    ) -> PinnedCertificate | None:
        """Remove a pinned certificate; None when there was no such pin."""
        ...

    async def pins(self, domain: str | None = None) -> list[PinnedCertificate]:
        """The pinned certificates of ``domain`` (of every domain when None)."""
        ...


class StatusStore(Protocol):
    """Where the streams' reports are written behind and read back."""

    async def write(self, statuses: Sequence[DomainStatus], at: datetime) -> None:
        """Upsert one row per (domain, direction, node)."""
        ...

    async def read(self) -> list[ReportedStatus]:
        """Every row, by domain, direction and node."""
        ...
