"""Peer certificates uploaded to be pinned for a remote domain (XEP-0178 §3, RFC 6125).

Sans-IO: bytes and ``now`` in, a :class:`PeerCertificate` or a
:class:`~carewire.security.certificates.CertificateError` out.

What is accepted, and why (docs/federation-admin.md):

- PEM (one or more ``CERTIFICATE`` blocks) or a single DER certificate. Of a
  chain, the first certificate (the server's own) is pinned: a pin matches the
  certificate a peer presents, never its issuer; a warning says so.
- A private key anywhere in the file is refused: the other side's key must
  never leave it, and it is not stored or echoed.
- An expired certificate is refused: a pin replaces the check of who issued a
  certificate, not of its validity period, so it could never authenticate
  anybody. One not valid yet is accepted with a warning (pinning a partner's
  next certificate before it switches); one expiring within 30 days too.
- A certificate that does not name the domain is accepted with a warning
  (self-signed certificates of some servers carry only a host name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from carewire.federation.domains import ascii_form
from carewire.security.certificates import CertificateError, dns_names, name_matches

#: The largest file accepted (a chain of a few certificates is a few KiB).
MAX_PEER_CERTIFICATE_BYTES = 64 * 1024
#: A certificate expiring sooner than this is accepted with a warning.
EXPIRY_WARNING = timedelta(days=30)

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerCertificate:
    """A certificate accepted for pinning.

    Attributes:
        sha256: SHA-256 of its DER form, lowercase hex without colons.
        pem: The certificate alone, PEM.
        subject: Its subject (RFC 4514).
        issuer: Its issuer (RFC 4514).
        not_before: Start of its validity.
        not_after: End of its validity.
        names: The DNS names it carries (its CN when it has none).
        warnings: What the uploader should know (accepted nonetheless).
    """

    sha256: str
    pem: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def sha256_of(cert: x509.Certificate) -> str:
    """The fingerprint pins are compared by: SHA-256 of the DER form, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def normalize_fingerprint(text: str) -> str:
    """``AB:CD:…`` or ``abcd…`` as lowercase hex without separators.

    Raises:
        CertificateError: not 64 hexadecimal digits (``invalid-fingerprint``).
    """
    compact = re.sub(r"[\s:]", "", text).lower()
    if not _FINGERPRINT.match(compact):
        raise CertificateError(
            "a SHA-256 fingerprint is 64 hexadecimal digits (colons allowed)",
            code="invalid-fingerprint",
        )
    return compact


def _certificates(data: bytes) -> list[x509.Certificate]:
    text = data.decode("ascii", errors="replace")
    labels = _BLOCK.findall(text)
    if any("PRIVATE KEY" in label for label in labels):
        raise CertificateError(
            "the file holds a private key: upload only the other server's certificate "
            "(its key must never leave it); nothing was stored"
        )
    if not labels:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CertificateError(
                "the file is not a certificate: expected PEM ('-----BEGIN CERTIFICATE-----') "
                "or a DER certificate"
            ) from None
    others = sorted({label for label in labels if label != "CERTIFICATE"})
    if others:
        raise CertificateError(
            f"the file holds a '{others[0]}' block: upload only the server's certificate"
        )
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError("the file's certificate is not a valid X.509 certificate") from None


def parse_peer_certificate(data: bytes | str, *, domain: str, now: datetime) -> PeerCertificate:
    """The certificate to pin for ``domain`` from an uploaded file.

    Raises:
        CertificateError: empty, too large, not a certificate, holds a private key,
            or expired; the message says which.
    """
    raw = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    if not raw.strip():
        raise CertificateError("the file is empty: choose the other server's certificate")
    if len(raw) > MAX_PEER_CERTIFICATE_BYTES:
        raise CertificateError(
            f"the file is larger than {MAX_PEER_CERTIFICATE_BYTES // 1024} KiB: "
            "upload only the server's certificate"
        )
    chain = _certificates(raw)
    leaf = chain[0]
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not_after <= now:
        raise CertificateError(
            f"the certificate expired on {not_after:%Y-%m-%d %H:%M} UTC: ask the other "
            "hospital for its current certificate"
        )
    names = dns_names(leaf)
    return PeerCertificate(
        sha256=sha256_of(leaf),
        pem=leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=not_before,
        not_after=not_after,
        names=names,
        warnings=_warnings(len(chain), names, domain, now, not_before, not_after),
    )


def _warnings(
    count: int,
    names: tuple[str, ...],
    domain: str,
    now: datetime,
    not_before: datetime,
    not_after: datetime,
) -> tuple[str, ...]:
    found: list[str] = []
    if count > 1:
        found.append(f"the file held {count} certificates: the first, the server's own, is pinned")
    if not any(name_matches(ascii_form(domain), n) for n in names):
        shown = ", ".join(names) or "none"
        found.append(f"the certificate does not name {domain} (its names: {shown})")
    if not_before > now:
        found.append(f"the certificate is not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    elif not_after - now <= EXPIRY_WARNING:
        found.append(f"the certificate expires on {not_after:%Y-%m-%d %H:%M} UTC")
    return tuple(found)
