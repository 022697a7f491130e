"""The federation tests' PKI: one test CA and per-domain server certificates for s2s.

A federating server authenticates a peer by its certificate (RFC 6120 §13.7.1.2,
RFC 7590, XEP-0178): the peer's domain must appear as a ``dNSName`` (or an
``xmppAddr`` / ``SRVName`` ``_xmpp-server.D``) in the subject alternative names of
a certificate that chains to a trusted CA. :class:`FederationPki` issues:

- :meth:`FederationPki.server` – CA-signed, the domain and its sub-domains
  (``conference.D``, ``chat.D``) as dNSName (xmppAddr and SRVName on request),
  ``serverAuth`` and ``clientAuth`` (the certificate is presented on outgoing
  streams too);
- ``expired=True`` – the same, but its validity ended yesterday;
- :meth:`FederationPki.self_signed` – signed by its own key: the dialback case.

Unlike tests/security/pki.py (a fixed clock for certificate-manager logic) the
validity here is relative to now: real servers check it against the real clock.
:meth:`Issued.write` puts ``NAME.crt`` / ``NAME.key`` (and ``ca.crt``) in a directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

#: id-on-xmppAddr (RFC 6120 §13.7.1.4) and id-on-dnsSRV (RFC 4985).
XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
SRV_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.7")
#: Sub-domains a test server hosts services on (MUC), covered by its certificate.
SERVICES = ("conference", "chat")


def _der_string(tag: int, text: str) -> bytes:
    """A DER UTF8String (0x0C) or IA5String (0x16) – the OtherName values (short strings)."""
    data = text.encode()
    assert len(data) < 128
    return bytes([tag, len(data)]) + data


def _name(cn: str, org: str = "Carewire federation tests") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def sha256(self) -> str:
        """The certificate's SHA-256 fingerprint, lower-case hex without colons."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``NAME.crt`` and ``NAME.key`` (mode 0644/0640) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        crt, key = directory / f"{name}.crt", directory / f"{name}.key"
        crt.write_text(self.cert_pem())
        key.write_text(self.key_pem())
        crt.chmod(0o644)
        key.chmod(0o644)  # read by a peer running as its own system user; test keys only
        return crt, key


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: Issued | None,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool = False,
    sans: Sequence[x509.GeneralName] = (),
) -> Issued:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if is_ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def xmpp_sans(
    domain: str, *, services: Sequence[str] = SERVICES, other_names: bool = False
) -> list[x509.GeneralName]:
    """dNSName for the domain and its service sub-domains (and xmppAddr, SRVName if asked).

    ``other_names`` is off by default: ejabberd 23.01 crashes its s2s_in process on
    a peer certificate that carries them (``xmpp_stream_pkix:get_cert_domains``).
    """
    names: list[x509.GeneralName] = [x509.DNSName(domain)]
    names += [x509.DNSName(f"{s}.{domain}") for s in services]
    if other_names:
        names.append(x509.OtherName(XMPP_ADDR, _der_string(0x0C, domain)))
        names.append(x509.OtherName(SRV_NAME, _der_string(0x16, f"_xmpp-server.{domain}")))
    return names


@dataclass(slots=True)
class FederationPki:
    """A test CA (valid now) that issues server certificates for XMPP domains."""

    name: str = "Carewire Federation Test CA"
    ca: Issued = field(init=False)

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        self.ca = _issue(
            _name(self.name),
            ec.generate_private_key(ec.SECP256R1()),
            issuer=None,
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=3650),
            is_ca=True,
        )

    def server(
        self,
        domain: str,
        *,
        expired: bool = False,
        services: Sequence[str] = SERVICES,
        other_names: bool = False,
    ) -> Issued:
        """A CA-signed certificate for ``domain`` (expired yesterday when ``expired``)."""
        now = datetime.now(UTC)
        start, end = (
            (now - timedelta(days=30), now - timedelta(days=1))
            if expired
            else (now - timedelta(hours=1), now + timedelta(days=30))
        )
        return _issue(
            _name(domain),
            ec.generate_private_key(ec.SECP256R1()),
            issuer=self.ca,
            not_before=start,
            not_after=end,
            sans=xmpp_sans(domain, services=services, other_names=other_names),
        )

    @staticmethod
    def self_signed(domain: str, *, services: Sequence[str] = SERVICES) -> Issued:
        """A self-signed certificate for ``domain``: valid names, but no CA vouches for it."""
        now = datetime.now(UTC)
        return _issue(
            _name(domain, "Self-signed"),
            ec.generate_private_key(ec.SECP256R1()),
            issuer=None,
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=30),
            sans=xmpp_sans(domain, services=services),
        )

    def write_ca(self, directory: Path) -> Path:
        """``ca.crt`` in ``directory`` (the file ``[s2s] ca_file`` and the peers trust)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "ca.crt"
        path.write_text(self.ca.cert_pem())
        path.chmod(0o644)
        return path
