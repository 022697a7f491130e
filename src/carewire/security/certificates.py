"""The XMPP certificate: a self-signed one for the chat domain, created when missing.

The certificate covers the chat domain and its ``chat.``/``patients.``
sub-domains (the DNS names a deployment registers). ECDSA P-256 keeps TLS handshakes cheap;
an administrator may replace it with a CA-signed certificate of any key type.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from carewire.errors import ConfigError

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 365


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """What an administrator needs to know about a certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    is_self_signed: bool


def create_self_signed(
    domain: str,
    cert_file: Path,
    key_file: Path,
    *,
    days: int = SELF_SIGNED_DAYS,
    now: datetime | None = None,
) -> CertificateInfo:
    """Write a new key and self-signed certificate for ``domain`` (key file mode 0600)."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    names = [domain, f"chat.{domain}", f"patients.{domain}"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("created a self-signed certificate for %s (valid %d days)", domain, days)
    return describe(cert_file)


def describe(cert_file: Path) -> CertificateInfo:
    """Subject, issuer, validity and names of the first certificate in ``cert_file``.

    Raises:
        ConfigError: the file is missing or holds no PEM certificate.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not a PEM certificate"
        raise ConfigError(f"tls.cert: {cert_file}: {detail}") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=names,
        is_self_signed=cert.subject == cert.issuer,
    )


def ensure_certificate(
    domain: str, cert_file: Path, key_file: Path, *, now: datetime | None = None
) -> CertificateInfo:
    """Create a self-signed certificate when none exists; replace an expired self-signed one.

    A CA-signed certificate is never replaced automatically: an expired one is
    reported (the caller refuses to start with a clear message).
    """
    now = now or datetime.now(UTC)
    if not cert_file.exists() or not key_file.exists():
        return create_self_signed(domain, cert_file, key_file, now=now)
    info = describe(cert_file)
    if info.not_after <= now and info.is_self_signed:
        log.warning("the self-signed certificate expired on %s; creating a new one", info.not_after)
        return create_self_signed(domain, cert_file, key_file, now=now)
    return info
