"""The XMPP certificate: creation, description, and the checks an uploaded chain must pass.

The self-signed certificate covers the chat domain and its ``chat.``/``patients.``
sub-domains (the DNS names a deployment registers). ECDSA P-256 keeps TLS handshakes cheap;
an administrator may replace it with a CA-signed certificate of any key type.

Everything below :func:`ensure_certificate` is sans-IO: it takes PEM text,
keys and ``now`` and either returns what it found or raises
:class:`CertificateError` saying why the upload is refused.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from carewire.errors import ConfigError, ValidationError

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 365
#: A certificate that expires within this is "Expires Soon" ("within a month").
EXPIRY_WARNING = timedelta(days=30)


class CertificateError(ValidationError):
    """An uploaded certificate (or key, or PKCS#12 file) is refused; the message says why."""

    code = "invalid-certificate"


class CertStatus(enum.StrEnum):
    """A certificate's status, from its expiry date."""

    GOOD = "Good"
    EXPIRES_SOON = "Expires Soon"
    EXPIRED = "Expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """What an administrator needs to know about a certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    is_self_signed: bool
    fingerprint: str = ""  # SHA-256 of the DER certificate, colon-separated hex


def status_at(not_after: datetime, now: datetime) -> CertStatus:
    """Expired once ``not_after`` is past, Expires Soon within a month of it, else Good."""
    if not_after <= now:
        return CertStatus.EXPIRED
    if not_after - now <= EXPIRY_WARNING:
        return CertStatus.EXPIRES_SOON
    return CertStatus.GOOD


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (``AB:CD:…``)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names a certificate presents: its SAN DNS names, else its common name.

    RFC 6125 §6.4.4: the CN is checked only when the certificate has no DNS-ID.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if names:
        return names
    return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def info_of(cert: x509.Certificate) -> CertificateInfo:
    """The :class:`CertificateInfo` of a loaded certificate."""
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=dns_names(cert),
        is_self_signed=cert.subject == cert.issuer,
        fingerprint=fingerprint(cert),
    )


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def key_pem(key: PrivateKeyTypes) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def chat_names(domain: str) -> tuple[str, str, str]:
    """The chat domain and the ``chat.``/``patients.`` sub-domains federation uses."""
    return (domain, f"chat.{domain}", f"patients.{domain}")


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
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in chat_names(domain)]),
            critical=False,
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
    # The key first: a certificate whose key is missing would stop the server from starting.
    write_atomically(key_file, key_pem(key), mode=0o600)
    write_atomically(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    log.info("created a self-signed certificate for %s (valid %d days)", domain, days)
    return info_of(cert)


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
    return info_of(cert)


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


# -- checks on an uploaded chain ---------------------------------------------------

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})

MSG_NOT_PEM = "the file is not PEM: expected '-----BEGIN CERTIFICATE-----' blocks"
MSG_NO_CERT = "the file holds no certificate"
MSG_KEY_FIRST = "the certificate must come first; the private key, if included, goes last"
MSG_KEY_MISMATCH = "the private key does not match the certificate"
MSG_NO_KEY = (
    "the file holds no private key and no CSR is in progress: "
    "include the certificate's private key last in the file"
)
MSG_NOT_FOR_CSR = (
    "the certificate was not issued for the CSR in progress (its public key differs): "
    "upload the certificate signed for the current CSR, or include its private key last"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """A PEM file split into its certificates (in file order) and its optional private key."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedUpload:
    """An upload that passed every check: the chain and the key to install with it.

    Attributes:
        chain: Leaf first, then each intermediate.
        key: The leaf's private key (from the file, or the CSR in progress).
        is_from_csr: True when the key is the CSR in progress's.
    """

    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes
    is_from_csr: bool

    def chain_pem(self) -> bytes:
        """The chain as PEM, leaf first."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)


def parse_bundle(text: str | bytes) -> Bundle:
    """Split PEM text into certificates and an optional private key, which must come last.

    Raises:
        CertificateError: not PEM, no certificate, a key that is not last,
            encrypted or unreadable, or a block of another kind.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise CertificateError(MSG_NOT_PEM)
    certs: list[x509.Certificate] = []
    keys: list[str] = []
    for label, block in blocks:
        if label == "CERTIFICATE":
            if keys:
                raise CertificateError(MSG_KEY_FIRST)
            certs.append(_load_cert(block, len(certs) + 1))
        elif label in _KEY_LABELS:
            keys.append(block)
        elif label == "ENCRYPTED PRIVATE KEY":
            raise CertificateError("the private key is encrypted: include it without a passphrase")
        else:
            raise CertificateError(
                f"the file holds a '{label}' block: only certificates and one private key "
                "may be uploaded"
            )
    if not certs:
        raise CertificateError(MSG_NO_CERT)
    if len(keys) > 1:
        raise CertificateError("the file holds more than one private key: include only one")
    return Bundle(chain=tuple(certs), key=_load_key(keys[0]) if keys else None)


def _load_cert(block: str, position: int) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block.encode())
    except ValueError:
        raise CertificateError(f"certificate {position} is not a valid X.509 certificate") from None


def _load_key(block: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(block.encode(), password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise CertificateError(
            "the private key is encrypted: include it without a passphrase"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(
            "the private key cannot be read (expected PKCS#8 or traditional PEM)"
        ) from None


def _label(cert: x509.Certificate, position: int) -> str:
    return f"certificate {position} ({cert.subject.rfc4514_string() or 'no subject'})"


def check_order(chain: Sequence[x509.Certificate]) -> None:
    """Each certificate must be issued, and signed, by the one after it (leaf first).

    Raises:
        CertificateError: the chain is out of order or holds an unrelated certificate.
    """
    for i in range(len(chain) - 1):
        child, parent = chain[i], chain[i + 1]
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateError(
                f"the certificates are out of order: {_label(parent, i + 2)} did not issue "
                f"{_label(child, i + 1)}; put the server certificate first, then each "
                "intermediate in order"
            ) from None


def check_validity(chain: Sequence[x509.Certificate], now: datetime) -> None:
    """Every certificate must be valid at ``now`` (neither expired nor not yet valid).

    Raises:
        CertificateError: naming the first certificate that is not.
    """
    for i, cert in enumerate(chain, 1):
        if cert.not_valid_after_utc <= now:
            raise CertificateError(
                f"{_label(cert, i)} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if cert.not_valid_before_utc > now:
            raise CertificateError(
                f"{_label(cert, i)} is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )


def name_matches(name: str, pattern: str) -> bool:
    """Whether DNS ``pattern`` (perhaps ``*.example.org``) covers ``name`` (RFC 6125 §6.4.3).

    A wildcard is only a whole left-most label and stands for exactly one label,
    so ``*.example.org`` covers ``chat.example.org`` but neither ``example.org``
    nor ``a.chat.example.org``; it needs at least two labels after it.
    """
    name, pattern = name.lower().rstrip("."), pattern.lower().rstrip(".")
    if not pattern.startswith("*."):
        return name == pattern
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False
    head, _, rest = name.partition(".")
    return bool(head) and rest == suffix


def check_names(leaf: x509.Certificate, required: Sequence[str]) -> None:
    """The leaf must cover every name in ``required``.

    Raises:
        CertificateError: listing the names it does not cover and the ones it has.
    """
    present = dns_names(leaf)
    missing = [n for n in required if not any(name_matches(n, p) for p in present)]
    if missing:
        has = ", ".join(present) if present else "no DNS names"
        raise CertificateError(
            f"the certificate does not cover {', '.join(missing)} (it names {has})"
        )


def public_key_der(key: CertificatePublicKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER of a public key (to compare a key with a certificate)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_der(key: PrivateKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER of a private key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def accept_upload(
    text: str | bytes,
    *,
    required_names: Sequence[str],
    now: datetime,
    csr_key: PrivateKeyTypes | None,
) -> AcceptedUpload:
    """Run every check on an uploaded PEM file and return what to install.

    Args:
        text: The PEM file: the leaf, its intermediates in order, optionally its key last.
        required_names: DNS names the leaf must cover.
        now: The current time.
        csr_key: The private key of the CSR in progress, if any (used when the file has none).

    Raises:
        CertificateError: saying why the file is refused.
    """
    bundle = parse_bundle(text)
    leaf = bundle.chain[0]
    check_order(bundle.chain)
    leaf_key = public_key_der(leaf.public_key())
    if bundle.key is not None:
        if private_key_der(bundle.key) != leaf_key:
            raise CertificateError(MSG_KEY_MISMATCH)
        key, is_from_csr = bundle.key, False
    elif csr_key is None:
        raise CertificateError(MSG_NO_KEY)
    elif private_key_der(csr_key) != leaf_key:
        raise CertificateError(MSG_NOT_FOR_CSR)
    else:
        key, is_from_csr = csr_key, True
    check_validity(bundle.chain, now)
    check_names(leaf, required_names)
    return AcceptedUpload(chain=bundle.chain, key=key, is_from_csr=is_from_csr)


# -- certificate signing requests ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrSubject:
    """The subject fields of a CSR (the console's CSR tab); the CN is the chat domain."""

    country: str
    city: str
    state: str
    organization: str
    unit: str


def build_csr(domain: str, subject: CsrSubject, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PEM CSR for ``domain`` (CN and SAN) and its ``chat.``/``patients.`` sub-domains."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, subject.country),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, subject.state),
            x509.NameAttribute(NameOID.LOCALITY_NAME, subject.city),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, subject.unit),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
        ]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in chat_names(domain)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)
