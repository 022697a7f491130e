"""Push certificates (the mobile push service's client certificates, PKCS#12 with a password).

A hospital that re-signs and distributes the mobile app uploads its own push
certificate: a PKCS#12 file and its password, flagged production or
development, and legacy or next-gen (two client generations are served at
once, each authenticated by its own certificate).

The password only opens the file: it is never stored. The certificate and
key are re-serialised to one unencrypted PEM file, mode 0600, in the same
protected directory as the XMPP key (the server needs the key in clear to use
it, so an encrypted copy whose password sits next to it would protect nothing).
A JSON file beside it keeps the flags and what the console shows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from carewire.security.certificates import (
    CertificateError,
    fingerprint,
    key_pem,
    private_key_der,
    public_key_der,
    write_atomically,
)

log = logging.getLogger(__name__)

LEGACY = "legacy"
NEXT_GEN = "next-gen"
MSG_CANNOT_OPEN = (
    "the push certificate cannot be opened: the password is wrong or the file is not PKCS#12"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApnsDetails:
    """A stored push certificate."""

    slot: str  # "legacy" or "next-gen"
    subject: str
    not_after: datetime
    fingerprint: str
    is_production: bool
    is_next_gen: bool
    uploaded_at: datetime


def slot_of(*, is_next_gen: bool) -> str:
    """The file name stem of a client generation's certificate."""
    return NEXT_GEN if is_next_gen else LEGACY


class ApnsStore:
    """The push certificates under one directory (``<slot>.pem`` and ``<slot>.json``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(
        self,
        p12: bytes,
        password: str,
        *,
        is_production: bool,
        is_next_gen: bool,
        now: datetime,
    ) -> ApnsDetails:
        """Open ``p12`` with ``password``, check it, and store its certificate and key.

        Raises:
            CertificateError: it does not open, lacks a certificate or a matching key,
                or is not valid at ``now``.
        """
        key, cert = _open(p12, password, now)
        details = ApnsDetails(
            slot=slot_of(is_next_gen=is_next_gen),
            subject=cert.subject.rfc4514_string(),
            not_after=cert.not_valid_after_utc,
            fingerprint=fingerprint(cert),
            is_production=is_production,
            is_next_gen=is_next_gen,
            uploaded_at=now,
        )
        pem = cert.public_bytes(serialization.Encoding.PEM) + key_pem(key)
        write_atomically(self.folder / f"{details.slot}.pem", pem, mode=0o600)
        write_atomically(self.folder / f"{details.slot}.json", _to_json(details))
        log.info("stored the %s push certificate (%s)", details.slot, details.subject)
        return details

    def list(self) -> tuple[ApnsDetails, ...]:
        """The stored certificates, legacy first."""
        found = []
        for slot in (LEGACY, NEXT_GEN):
            try:
                data = json.loads((self.folder / f"{slot}.json").read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            found.append(
                ApnsDetails(
                    slot=slot,
                    subject=data["subject"],
                    not_after=datetime.fromisoformat(data["not_after"]),
                    fingerprint=data["fingerprint"],
                    is_production=data["production"],
                    is_next_gen=data["next_gen"],
                    uploaded_at=datetime.fromisoformat(data["uploaded_at"]),
                )
            )
        return tuple(found)


def _open(p12: bytes, password: str, now: datetime) -> tuple[PrivateKeyTypes, x509.Certificate]:
    """The key and certificate of a PKCS#12 file, checked to match and to be valid at ``now``."""
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(
            p12, password.encode() if password else None
        )
    except (ValueError, TypeError):
        raise CertificateError(MSG_CANNOT_OPEN) from None
    if cert is None or key is None:
        raise CertificateError("the push certificate file must hold a certificate and its key")
    if private_key_der(key) != public_key_der(cert.public_key()):
        raise CertificateError("the push certificate's key does not match its certificate")
    if cert.not_valid_after_utc <= now:
        raise CertificateError(
            f"the push certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    if cert.not_valid_before_utc > now:
        raise CertificateError(
            f"the push certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
        )
    return key, cert


def _to_json(details: ApnsDetails) -> bytes:
    return json.dumps(
        {
            "subject": details.subject,
            "not_after": details.not_after.isoformat(),
            "fingerprint": details.fingerprint,
            "production": details.is_production,
            "next_gen": details.is_next_gen,
            "uploaded_at": details.uploaded_at.isoformat(),
        },
        indent=2,
    ).encode()
