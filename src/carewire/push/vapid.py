"""The server's VAPID key (RFC 8292): a P-256 key in ``keys/vapid.pem``, and its tokens.

The key is made by ``carewire init`` or, for an installation made before
Web Push, at the first start with ``push.webpush`` on: mode 0600 in the
0700 ``keys/`` directory, like the server secret and the metrics token. Its
public half, base64url, is the browsers' ``applicationServerKey``: a push
service accepts pushes for a subscription only with a token signed by it.
Replacing the file invalidates every browser subscription (they must
subscribe again).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from carewire.errors import ConfigError
from carewire.push import jwt
from carewire.push.webpush_model import vapid_claims


def ensure_vapid_key(path: Path) -> Path:
    """Create the VAPID key at ``path`` (owner-only) unless it exists; return ``path``."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile: keep theirs
            return path
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return path


def load_vapid_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The VAPID key at ``path``, created when missing.

    Raises:
        ConfigError: The file cannot be read or is not a P-256 private key.
    """
    try:
        pem = ensure_vapid_key(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"push: the VAPID key {path}: {exc.strerror}") from None
    key = jwt.load_key(pem, f"push: the VAPID key {path}")
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"push: the VAPID key {path} must be a P-256 key")
    return key


def public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey``: the uncompressed public point, base64url (65 bytes)."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return jwt.b64url(raw)


def authorization(key: ec.EllipticCurvePrivateKey, endpoint: str, *, subject: str, now: int) -> str:
    """The ``Authorization`` header of a push to ``endpoint`` (RFC 8292 §3: ``vapid t, k``)."""
    token = jwt.es256(key, claims=vapid_claims(endpoint, subject=subject, now=now))
    return f"vapid t={token}, k={public_key(key)}"
