"""A small test PKI: a root CA, an intermediate, and leaves issued by them (real certificates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DOMAIN = "h.example"

Key = CertificateIssuerPrivateKeyTypes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """A certificate and its key."""

    cert: x509.Certificate
    key: Key

    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        ).decode()


def issue(
    subject: str,
    *,
    issuer: Issued | None = None,
    names: Sequence[str] = (),
    key: Key | None = None,
    not_before: datetime = NOW - timedelta(days=10),
    not_after: datetime = NOW + timedelta(days=365),
    is_ca: bool = False,
) -> Issued:
    """A certificate for ``subject`` signed by ``issuer`` (self-signed when ``None``)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.cert.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return Issued(cert=builder.sign(issuer.key if issuer else key, hashes.SHA256()), key=key)


@dataclass(slots=True, kw_only=True)
class Pki:
    """A root CA and an intermediate CA that issues leaves."""

    root: Issued = field(
        default_factory=lambda: issue(
            "Test Root CA", is_ca=True, not_before=NOW - timedelta(days=3650)
        )
    )
    intermediate: Issued = field(init=False)

    def __post_init__(self) -> None:
        self.intermediate = issue(
            "Test Intermediate CA",
            issuer=self.root,
            is_ca=True,
            not_before=NOW - timedelta(days=3650),
            not_after=NOW + timedelta(days=3650),
        )

    def leaf(
        self, names: Sequence[str] = (DOMAIN,), *, subject: str = DOMAIN, **kwargs: object
    ) -> Issued:
        """A server certificate issued by the intermediate."""
        return issue(subject, issuer=self.intermediate, names=names, **kwargs)  # type: ignore[arg-type]

    def chain_pem(self, leaf: Issued, *, with_key: bool = True) -> str:
        """Leaf, intermediate, and (optionally) the leaf's key last."""
        text = leaf.cert_pem() + self.intermediate.cert_pem()
        return text + leaf.key_pem() if with_key else text


def rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key (a CA-signed certificate may use any key type)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def p12(issued: Issued, password: bytes | None) -> bytes:
    """A PKCS#12 file holding ``issued`` and its key, encrypted with ``password``."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key = issued.key
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return pkcs12.serialize_key_and_certificates(b"push", key, issued.cert, None, encryption)
