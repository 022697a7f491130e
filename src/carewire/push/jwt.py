"""Signed JSON Web Tokens for push (RFC 7519): ES256 for APNs and VAPID, RS256 for Google.

APNs token-based authentication wants an ES256 JWT with ``kid`` (key id) in
the header and ``iss`` (team id) and ``iat`` in the claims, refreshed no more
often than every 20 minutes and no less than every 60 (we renew after 50).
FCM HTTP v1 wants an OAuth 2.0 access token, obtained with an RS256 JWT
assertion of the service account (RFC 7523 JWT-bearer grant).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from carewire.errors import ConfigError


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signing_input(header: Mapping[str, object], claims: Mapping[str, object]) -> bytes:
    def part(obj: Mapping[str, object]) -> str:
        return b64url(json.dumps(obj, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}".encode("ascii")


def load_key(pem: bytes, what: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """An unencrypted PEM private key (P-256 for APNs, RSA for Google).

    Raises:
        ConfigError: It does not load or is of another kind.
    """
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{what}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"{what}: expected an EC (P-256) or RSA key")
    return key


def es256(
    key: ec.EllipticCurvePrivateKey, *, key_id: str = "", claims: Mapping[str, object]
) -> str:
    """A compact ES256 JWT (RFC 7518 §3.4: the signature is R || S, 32 bytes each).

    With ``key_id`` (APNs) the header names it (``kid``); without (VAPID, RFC 8292 §2) it
    is ``{"typ": "JWT", "alg": "ES256"}``.
    """
    header = {"alg": "ES256", "kid": key_id} if key_id else {"typ": "JWT", "alg": "ES256"}
    signing = _signing_input(header, claims)
    r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
    return f"{signing.decode()}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def rs256(key: rsa.RSAPrivateKey, *, claims: Mapping[str, object]) -> str:
    """A compact RS256 JWT (RFC 7518 §3.3)."""
    signing = _signing_input({"alg": "RS256", "typ": "JWT"}, claims)
    signature = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing.decode()}.{b64url(signature)}"
