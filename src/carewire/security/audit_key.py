"""The audit key: authenticates audit entries (HMAC-SHA-256) and signs checkpoints (Ed25519).

The key is 32 random bytes held **outside the database**: in a file (mode
0600, in a directory of mode 0700, outside the data directory; ``carewire
init`` creates it) or in the ``CAREWIRE_AUDIT_KEY`` environment variable
(base64), which wins over the file. Two keys are derived from it with
HKDF-SHA-256 (RFC 5869) under distinct labels: the MAC key of entries and the
Ed25519 (RFC 8032) key that signs checkpoints. Someone who can write the
database but not read this key cannot make an entry, an epoch marker or a
checkpoint that verifies.

The key's ``key_id`` (the first 16 hex digits of SHA-256 over the Ed25519
public key) names it in epoch markers and checkpoints; it says which key was
used without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carewire.errors import ConfigError

log = logging.getLogger(__name__)

#: The environment variable holding the key (base64 of 32 bytes); it wins over the file.
ENV_VAR = "CAREWIRE_AUDIT_KEY"
KEY_BYTES = 32
_MAC_LABEL = b"carewire audit entry mac v1"
_SIGN_LABEL = b"carewire audit checkpoint signature v1"
_HEADER = (
    "# Carewire audit key: authenticates the audit trail and signs its checkpoints.\n"
    "# Keep a copy apart from database backups; never store it in the database.\n"
)


def _derive(seed: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(seed)


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret of one installation's audit trail (see the module docstring).

    Attributes:
        key_id: Names the key (16 hex digits) without revealing it.
    """

    _mac_key: bytes = field(repr=False)
    _signer: Ed25519PrivateKey = field(repr=False)
    key_id: str

    @classmethod
    def from_seed(cls, seed: bytes) -> AuditKey:
        """The key derived from 32 secret bytes.

        Raises:
            ConfigError: ``seed`` is not 32 bytes long.
        """
        if len(seed) != KEY_BYTES:
            raise ConfigError(f"audit key: expected {KEY_BYTES} bytes, got {len(seed)}")
        signer = Ed25519PrivateKey.from_private_bytes(_derive(seed, _SIGN_LABEL))
        public = signer.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(_derive(seed, _MAC_LABEL), signer, hashlib.sha256(public).hexdigest()[:16])

    @classmethod
    def generate(cls) -> AuditKey:
        """A fresh random key held only in memory (tests and throw-away trails)."""
        return cls.from_seed(secrets.token_bytes(KEY_BYTES))

    def mac(self, data: bytes) -> str:
        """HMAC-SHA-256 (hex) of ``data`` under the entry MAC key."""
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def is_mac(self, data: bytes, mac: str) -> bool:
        """Whether ``mac`` is ``data``'s MAC (compared in constant time)."""
        return hmac.compare_digest(self.mac(data), mac)

    def sign(self, data: bytes) -> str:
        """The Ed25519 signature of ``data`` (base64)."""
        return base64.b64encode(self._signer.sign(data)).decode("ascii")

    def is_signature(self, data: bytes, signature: str) -> bool:
        """Whether ``signature`` (base64) is this key's signature of ``data``."""
        try:
            raw = base64.b64decode(signature, validate=True)
            self.public_key.verify(raw, data)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The checkpoint signatures' public key (may be given to an outside verifier)."""
        return self._signer.public_key()

    def public_pem(self) -> str:
        """The public key in PEM (SubjectPublicKeyInfo)."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


def parse_key(text: str, where: str) -> AuditKey:
    """The key written as base64 (``#`` comment lines and blank lines ignored).

    Raises:
        ConfigError: Not base64 of 32 bytes; the message names ``where`` only.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    try:
        seed = base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not a base64 audit key") from None
    if len(seed) != KEY_BYTES:
        raise ConfigError(f"{where}: an audit key is {KEY_BYTES} bytes, found {len(seed)}")
    return AuditKey.from_seed(seed)


def create_key_file(path: Path) -> AuditKey:
    """Write a new random key to ``path`` (0600; its directory made 0700).

    Raises:
        ConfigError: ``path`` exists already, or cannot be written.
    """
    seed = secrets.token_bytes(KEY_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: an audit key exists already; it is never overwritten") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the audit key ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(_HEADER + base64.b64encode(seed).decode("ascii") + "\n")
        f.flush()
        os.fsync(f.fileno())
    return AuditKey.from_seed(seed)


def read_key_file(path: Path) -> AuditKey:
    """The key in ``path``.

    Raises:
        ConfigError: Missing, unreadable, readable by others, or not a key.
    """
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: audit key not found (the server creates it at its first start; "
            f"restore a lost one from its backup, or set {ENV_VAR})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the audit key ({exc})") from None
    if mode & 0o077:
        raise ConfigError(f"{path}: the audit key must be readable by its owner only (chmod 600)")
    return parse_key(text, str(path))


def load_key(path: Path, *, env: dict[str, str] | None = None, create: bool = True) -> AuditKey:
    """The installation's key: ``CAREWIRE_AUDIT_KEY``, else the file at ``path``.

    A missing file is created (unless ``create`` is false) with a warning: an
    installation from before authenticated entries gets its key at first start.

    Raises:
        ConfigError: The variable or the file holds no valid key, or the file is missing
            and ``create`` is false.
    """
    env = dict(os.environ) if env is None else env
    if env.get(ENV_VAR):
        return parse_key(env[ENV_VAR], ENV_VAR)
    if create and not path.exists():
        key = create_key_file(path)
        log.warning("created a new audit key in %s: back it up apart from the database", path)
        return key
    return read_key_file(path)
