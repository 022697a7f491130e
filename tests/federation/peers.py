"""Peer certificates for the federation tests: real self-signed certificates, made once."""

from __future__ import annotations

import functools
from datetime import timedelta

from cryptography.hazmat.primitives import hashes, serialization

from tests.security.pki import NOW, Issued, issue

#: The remote domain most tests pin certificates for.
PEER = "b.example"
#: This server's chat domain in those tests.
LOCAL = "h.example"


@functools.cache
def peer(name: str = PEER, *, days: int = 365, starts_in: int = -10) -> Issued:
    """A self-signed certificate naming ``name``, valid ``days`` days from ``NOW``."""
    return issue(
        name,
        names=[name],
        not_before=NOW + timedelta(days=starts_in),
        not_after=NOW + timedelta(days=days),
    )


def sha256(issued: Issued) -> str:
    """Its SHA-256, as pins are kept."""
    return issued.cert.fingerprint(hashes.SHA256()).hex()


def der(issued: Issued) -> bytes:
    """Its DER form."""
    return issued.cert.public_bytes(serialization.Encoding.DER)
