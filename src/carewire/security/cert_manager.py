"""The certificate manager: view, download, replace and renew the XMPP certificate; CSRs; APNs.

Theory of operation. The XMPP certificate lives in the two files the
configuration names (``tls.cert``: the chain, leaf first; ``tls.key``: its key,
mode 0600). A certificate signing request in progress lives in
``certs/csr/`` (its key, the CSR and its subject fields as JSON) until a
certificate signed for it is uploaded. Push certificates live in
``certs/apns/``, one per client generation (legacy and next-gen).

Every change is written through a temporary file and a rename, then recorded
in the audit trail, then announced to the listeners (the server swaps the TLS
context new connections use; existing connections keep theirs). The checks an
upload must pass are the sans-IO functions of :mod:`.certificates`.

Renewal policy (:meth:`CertificateManager.check`, at start and daily): an
expired self-signed certificate is replaced by a new one; a CA-signed
certificate is never replaced, it is reported (``certificate.expiring``
within a month of its expiry, ``certificate.expired`` after it).
"""

from __future__ import annotations

import enum
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from carewire.clock import Clock
from carewire.rules.settings import SettingsError
from carewire.security import apns
from carewire.security.audit import AuditEvent, Channel, Outcome
from carewire.security.certificates import (
    CertificateError,
    CertStatus,
    CsrSubject,
    accept_upload,
    build_csr,
    chat_names,
    create_self_signed,
    describe,
    key_pem,
    status_at,
    write_atomically,
)

log = logging.getLogger(__name__)

__all__ = [
    "Auditor",
    "Caller",
    "CertificateDetails",
    "CertificateError",
    "CertificateManager",
    "CheckOutcome",
    "CheckResult",
    "CsrDetails",
]

CSR_DIR = "certs/csr"
APNS_DIR = "certs/apns"
_CSR_FIELDS = (
    ("country", "Country"),
    ("city", "City"),
    ("state", "State"),
    ("organization", "Organization"),
    ("unit", "Organizational Unit"),
)


class Auditor(Protocol):
    """Where the manager records what it did (:class:`~carewire.security.audit.AuditTrail`)."""

    async def record(self, event: AuditEvent) -> object:
        """Append ``event`` to the trail."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who asks for a change, as the audit trail records it."""

    actor: str = "system"
    channel: Channel = Channel.SYSTEM
    remote_ip: str = ""


SYSTEM = Caller()


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateDetails:
    """The console's "certificate details" of the XMPP certificate."""

    domain: str
    status: CertStatus
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    is_self_signed: bool
    fingerprint: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrDetails:
    """The CSR in progress: the domain (its CN) and the subject fields it was made with."""

    domain: str
    country: str
    city: str
    state: str
    organization: str
    unit: str
    created_at: datetime
    pem: str


class CheckOutcome(enum.StrEnum):
    """What :meth:`CertificateManager.check` found or did."""

    GOOD = "good"
    CREATED = "created"  # there was none: a self-signed one was made
    RENEWED = "renewed"  # an expired self-signed one was replaced
    EXPIRING = "expiring"  # CA-signed, expires within a month
    EXPIRED = "expired"  # CA-signed and expired: never replaced automatically


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The outcome of a check and the certificate in place afterwards."""

    outcome: CheckOutcome
    details: CertificateDetails
    days_left: int


class CertificateManager:
    """The XMPP certificate of one chat domain, its CSR in progress and its push certificates.

    Args:
        data_dir: The data directory (CSR and push certificates go under ``certs/``).
        domain: The chat domain.
        clock: The clock (expiry checks).
        audit: The audit trail (``None``: nothing is recorded, for tools and tests).
        cert_file: The chain file (default ``certs/xmpp.pem``).
        key_file: The key file (default ``certs/xmpp.key``).
    """

    def __init__(
        self,
        data_dir: Path,
        domain: str,
        clock: Clock,
        audit: Auditor | None,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.domain = domain
        self.cert_file = cert_file or data_dir / "certs/xmpp.pem"
        self.key_file = key_file or data_dir / "certs/xmpp.key"
        self._clock = clock
        self._audit = audit
        self._listeners: list[Callable[[], None]] = []
        self.apns = apns.ApnsStore(data_dir / APNS_DIR)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every change of the certificate or key files."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    async def _record(
        self,
        by: Caller,
        action: str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        target: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        if self._audit is None:
            return
        await self._audit.record(
            AuditEvent(
                actor=by.actor,
                channel=by.channel,
                action=action,
                target=self.domain if target is None else target,
                outcome=outcome,
                remote_ip=by.remote_ip,
                details=details or {},
            )
        )

    # -- the XMPP certificate --------------------------------------------------------

    def details(self, now: datetime | None = None) -> CertificateDetails:
        """The current certificate's details and status (Good, Expires Soon, Expired) at ``now``.

        Raises:
            ConfigError: the certificate file is missing or unreadable.
        """
        info = describe(self.cert_file)
        return CertificateDetails(
            domain=self.domain,
            status=status_at(info.not_after, now or self._clock.now()),
            subject=info.subject,
            issuer=info.issuer,
            not_before=info.not_before,
            not_after=info.not_after,
            is_self_signed=info.is_self_signed,
            fingerprint=info.fingerprint,
            names=info.names,
        )

    def download(self) -> str:
        """The certificate chain as PEM text (never the key)."""
        return self.cert_file.read_text(encoding="ascii")

    async def delete(self, *, by: Caller = SYSTEM) -> CertificateDetails:
        """Remove the certificate and key, and put a new self-signed one in their place."""
        old = self.details()
        self.cert_file.unlink(missing_ok=True)
        self.key_file.unlink(missing_ok=True)
        await self._record(by, "certificate.delete", details=_facts(old))
        new = await self._generate(by)
        self._changed()
        return new

    async def _generate(self, by: Caller) -> CertificateDetails:
        create_self_signed(self.domain, self.cert_file, self.key_file, now=self._clock.now())
        new = self.details()
        await self._record(by, "certificate.generate", details=_facts(new))
        return new

    async def upload(
        self, pem_text: str | bytes, *, is_federating: bool = False, by: Caller = SYSTEM
    ) -> CertificateDetails:
        """Install an uploaded chain (leaf first, intermediates in order, optional key last).

        Without a key in the file, the certificate must be the one signed for the
        CSR in progress, whose key is then used (and the CSR cleared).

        Raises:
            CertificateError: saying why the file is refused (also recorded as a failure).
        """
        names = chat_names(self.domain) if is_federating else (self.domain,)
        try:
            accepted = accept_upload(
                pem_text, required_names=names, now=self._clock.now(), csr_key=self._csr_key()
            )
        except CertificateError as exc:
            await self._record(
                by, "certificate.upload", outcome=Outcome.FAILURE, details={"reason": exc.message}
            )
            raise
        # Both files are complete on disk before either is renamed into place.
        write_atomically(self.key_file, key_pem(accepted.key), mode=0o600)
        write_atomically(self.cert_file, accepted.chain_pem())
        if accepted.is_from_csr:
            shutil.rmtree(self.data_dir / CSR_DIR, ignore_errors=True)
        new = self.details()
        facts = _facts(new) | {"federating": is_federating, "from_csr": accepted.is_from_csr}
        await self._record(by, "certificate.upload", details=facts)
        log.info("installed an uploaded certificate for %s (%s)", self.domain, new.subject)
        self._changed()
        return new

    async def check(self, now: datetime | None = None) -> CheckResult:
        """The start-up and daily check: create, renew or report (see the module docstring)."""
        now = now or self._clock.now()
        outcome = CheckOutcome.GOOD
        if not self.cert_file.exists() or not self.key_file.exists():
            await self._generate(SYSTEM)
            outcome = CheckOutcome.CREATED
            self._changed()
        details = self.details(now)
        if details.status is CertStatus.EXPIRED and details.is_self_signed:
            details, outcome = await self._renew(details, now), CheckOutcome.RENEWED
        elif details.status is not CertStatus.GOOD and not details.is_self_signed:
            outcome = await self._report(details, now)
        return CheckResult(
            outcome=outcome, details=details, days_left=(details.not_after - now).days
        )

    async def _renew(self, old: CertificateDetails, now: datetime) -> CertificateDetails:
        log.warning("the self-signed certificate expired on %s; replacing it", old.not_after)
        create_self_signed(self.domain, self.cert_file, self.key_file, now=now)
        new = self.details(now)
        await self._record(
            SYSTEM, "certificate.renew", details=_facts(new) | {"replaced": old.fingerprint}
        )
        self._changed()
        return new

    async def _report(self, details: CertificateDetails, now: datetime) -> CheckOutcome:
        """A CA-signed certificate near or past its expiry: recorded, never replaced."""
        days_left = (details.not_after - now).days
        if details.status is CertStatus.EXPIRED:
            outcome = CheckOutcome.EXPIRED
            log.warning("the CA-signed certificate expired on %s", details.not_after)
        else:
            outcome = CheckOutcome.EXPIRING
            log.warning("the CA-signed certificate expires on %s", details.not_after)
        await self._record(
            SYSTEM,
            f"certificate.{outcome.value}",
            outcome=Outcome.FAILURE,
            details=_facts(details) | {"days_left": days_left},
        )
        return outcome

    # -- the certificate signing request in progress ---------------------------------

    async def create_csr(
        self,
        *,
        country: str,
        city: str,
        state: str,
        organization: str,
        unit: str,
        by: Caller = SYSTEM,
    ) -> str:
        """A new key and CSR for the chat domain; any CSR in progress is overwritten.

        Raises:
            SettingsError: a field is missing, or the country is not a two-letter code.
        """
        subject = _csr_subject(
            country=country, city=city, state=state, organization=organization, unit=unit
        )
        key = ec.generate_private_key(ec.SECP256R1())
        pem = build_csr(self.domain, subject, key)
        folder = self.data_dir / CSR_DIR
        write_atomically(folder / "key.pem", key_pem(key), mode=0o600)
        write_atomically(folder / "request.pem", pem)
        fields = asdict(subject) | {"created_at": self._clock.now().isoformat()}
        write_atomically(folder / "fields.json", json.dumps(fields, indent=2).encode())
        await self._record(by, "certificate.csr", details=asdict(subject))
        return pem.decode("ascii")

    def csr_details(self) -> CsrDetails | None:
        """The CSR in progress, or ``None`` ("No CSR in progress")."""
        folder = self.data_dir / CSR_DIR
        try:
            fields = json.loads((folder / "fields.json").read_text(encoding="utf-8"))
            pem = (folder / "request.pem").read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        return CsrDetails(
            domain=self.domain,
            created_at=datetime.fromisoformat(fields.pop("created_at")),
            pem=pem,
            **fields,
        )

    def _csr_key(self) -> ec.EllipticCurvePrivateKey | None:
        try:
            data = (self.data_dir / CSR_DIR / "key.pem").read_bytes()
        except FileNotFoundError:
            return None
        key = serialization.load_pem_private_key(data, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    # -- push certificates ------------------------------------------------------------

    async def upload_apns(
        self,
        p12: bytes,
        password: str,
        *,
        is_production: bool,
        is_next_gen: bool,
        by: Caller = SYSTEM,
    ) -> apns.ApnsDetails:
        """Check a PKCS#12 push certificate opens with ``password`` and store it (see :mod:`.apns`).

        Raises:
            CertificateError: it does not open, lacks a certificate or key, or has expired.
        """
        target = f"apns:{apns.slot_of(is_next_gen=is_next_gen)}"
        try:
            details = self.apns.store(
                p12,
                password,
                is_production=is_production,
                is_next_gen=is_next_gen,
                now=self._clock.now(),
            )
        except CertificateError as exc:
            failed = {"reason": exc.message}
            action = "certificate.apns.upload"
            await self._record(by, action, outcome=Outcome.FAILURE, target=target, details=failed)
            raise
        facts = {
            "subject": details.subject,
            "not_after": details.not_after.isoformat(),
            "production": is_production,
        }
        await self._record(by, "certificate.apns.upload", target=target, details=facts)
        return details

    def apns_details(self) -> tuple[apns.ApnsDetails, ...]:
        """The stored push certificates (legacy first, then next-gen)."""
        return self.apns.list()


def _facts(details: CertificateDetails) -> dict[str, object]:
    """What the audit trail keeps about a certificate."""
    return {
        "subject": details.subject,
        "issuer": details.issuer,
        "not_after": details.not_after.isoformat(),
        "fingerprint": details.fingerprint,
    }


def _csr_subject(**values: str) -> CsrSubject:
    """Trimmed CSR fields, or a SettingsError listing every problem in the console's words."""
    clean = {name: (values.get(name) or "").strip() for name, _ in _CSR_FIELDS}
    problems = [f"Required: {label}" for name, label in _CSR_FIELDS if not clean[name]]
    country = clean["country"].upper()
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        problems.append("Country: a two-letter country code (ISO 3166-1), such as US")
    if problems:
        raise SettingsError(problems)
    return CsrSubject(**(clean | {"country": country}))
