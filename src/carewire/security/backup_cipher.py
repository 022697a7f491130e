"""The encrypted backup archive's outer layer: a versioned header and AES-256-GCM chunks.

Theory of operation. An archive is a header followed by frames::

    header  = MAGIC (6) | version (1) | kdf (1) | salt (16) | scrypt log2 n, r, p (3)
              | nonce prefix (7) | key check (16)
    frame   = length (4, big-endian) | AES-256-GCM ciphertext of up to CHUNK bytes + tag (16)

The key is derived per archive from the operator's secret and the random salt:
scrypt for a passphrase, HKDF-SHA-256 for a 32-byte key file. The *key check*
is the GCM tag of an empty message under a nonce no frame uses: a wrong key is
told apart from a damaged archive before anything is decrypted. Frame ``i``'s
nonce is ``prefix | i (4) | last (1)`` and every frame's associated data is
the whole header, so frames cannot be reordered, dropped, cut off at the end
(the last frame must carry ``last = 1``), moved to another archive, or the
header edited (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
Vizár, as in age and Tink). The cipher is the ``cryptography`` package's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from carewire.errors import CarewireError

MAGIC = b"CWBAK\x00"
VERSION = 1
CHUNK = 1 << 20
TAG = 16
SALT = 16
PREFIX = 7
KEY_BYTES = 32
#: scrypt cost for passphrases: n = 2**17, r = 8 (128 MiB, about half a second).
SCRYPT_LOG2_N = 17
SCRYPT_R = 8
SCRYPT_P = 1
#: The shortest passphrase accepted (a backup key is guessed offline, at leisure).
MIN_PASSPHRASE = 12
_HEAD = struct.Struct(f">{len(MAGIC)}sBB{SALT}sBBB{PREFIX}s")
HEADER_SIZE = _HEAD.size + TAG
_LENGTH = struct.Struct(">I")
_CHECK_COUNTER = 0xFFFFFFFF


class BackupError(CarewireError):
    """A backup archive cannot be written or read; ``code`` says why.

    Codes: ``not-an-archive``, ``unsupported-version``, ``wrong-key``, ``tampered``
    (altered, truncated or extended), ``bad-key`` (the key or passphrase given is unusable).
    """

    code = "backup-error"


class Kdf(IntEnum):
    """How the archive key is derived from the operator's secret."""

    PASSPHRASE = 1  # scrypt
    KEY_FILE = 2  # HKDF-SHA-256 over a random 32-byte key


@dataclass(frozen=True, slots=True)
class Secret:
    """The operator's secret for an archive: a passphrase or a key file's 32 bytes."""

    kdf: Kdf
    material: bytes

    @classmethod
    def passphrase(cls, text: str) -> Secret:
        """A passphrase (at least :data:`MIN_PASSPHRASE` characters).

        Raises:
            BackupError: Too short (``bad-key``).
        """
        if len(text) < MIN_PASSPHRASE:
            raise BackupError(
                f"the backup passphrase must have at least {MIN_PASSPHRASE} characters",
                code="bad-key",
            )
        return cls(Kdf.PASSPHRASE, text.encode("utf-8"))

    @classmethod
    def key_file(cls, path: Path) -> Secret:
        """The key in ``path``: base64 of 32 bytes (``#`` comments allowed), mode 0600.

        Raises:
            BackupError: Missing, readable by others, or not a 32-byte key (``bad-key``).
        """
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise BackupError(
                f"{path}: cannot read the backup key ({exc})", code="bad-key"
            ) from None
        if mode & 0o077:
            raise BackupError(
                f"{path}: the backup key must be readable by its owner only (chmod 600 {path})",
                code="bad-key",
            )
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        try:
            key = base64.b64decode("".join(lines), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise BackupError(
                f"{path}: a backup key is base64 of {KEY_BYTES} bytes"
                " ('carewire keys generate' prints one)",
                code="bad-key",
            )
        return cls(Kdf.KEY_FILE, key)


@functools.lru_cache(maxsize=4)
def _derive(secret: Secret, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    # Cached: a restore reads the archive more than once, and scrypt is slow on purpose.
    if secret.kdf is Kdf.PASSPHRASE:
        return Scrypt(salt=salt, length=KEY_BYTES, n=1 << log2_n, r=r, p=p).derive(secret.material)
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"carewire backup v1"
    ).derive(secret.material)


def _nonce(prefix: bytes, counter: int, *, is_last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if is_last else 0)


class ArchiveWriter:
    """A write-only file object that encrypts what is written to ``out`` (see the module).

    ``close`` writes the last frame; an archive without it reads as tampered.
    """

    def __init__(
        self, out: BinaryIO, secret: Secret, *, scrypt_log2_n: int = SCRYPT_LOG2_N
    ) -> None:
        salt, prefix = os.urandom(SALT), os.urandom(PREFIX)
        log2_n, r, p = (
            (scrypt_log2_n, SCRYPT_R, SCRYPT_P)
            if secret.kdf is Kdf.PASSPHRASE
            else (
                0,
                0,
                0,
            )
        )
        head = _HEAD.pack(MAGIC, VERSION, secret.kdf, salt, log2_n, r, p, prefix)
        self._aead = AESGCM(_derive(secret, salt, log2_n, r, p))
        check = self._aead.encrypt(_nonce(prefix, _CHECK_COUNTER, is_last=True), b"", head)
        self._header = head + check
        self._prefix = prefix
        self._out = out
        self._buffer = bytearray()
        self._counter = 0
        self._digest = hashlib.sha256()
        self._closed = False
        self._emit(self._header)

    @property
    def sha256(self) -> str:
        """The SHA-256 of the archive's bytes written so far (the whole once closed)."""
        return self._digest.hexdigest()

    def writable(self) -> bool:
        """Always: this is a writer."""
        return True

    def write(self, data: bytes) -> int:
        """Buffer ``data``, encrypting every full chunk."""
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._frame(bytes(self._buffer[:CHUNK]), is_last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: frames are written as chunks fill."""

    def close(self) -> None:
        """Write the last frame (what is buffered, possibly nothing)."""
        if not self._closed:
            self._frame(bytes(self._buffer), is_last=True)
            self._buffer.clear()
            self._closed = True

    def _frame(self, plain: bytes, *, is_last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, is_last=is_last)
        sealed = self._aead.encrypt(nonce, plain, self._header)
        self._counter += 1
        self._emit(_LENGTH.pack(len(sealed)) + sealed)

    def _emit(self, data: bytes) -> None:
        self._digest.update(data)
        self._out.write(data)


class ArchiveReader:
    """A read-only file object over an archive's plaintext, authenticated frame by frame.

    Opening checks the header and the key (:class:`BackupError` ``wrong-key``
    before anything is decrypted); reading raises ``tampered`` at the first
    frame that does not authenticate, and at an end without the last frame.
    """

    def __init__(self, source: BinaryIO, secret: Secret) -> None:
        header = source.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
            raise BackupError("not a Carewire backup archive", code="not-an-archive")
        _magic, version, kdf, salt, log2_n, r, p, prefix = _HEAD.unpack(header[: _HEAD.size])
        if version != VERSION:
            raise BackupError(
                f"backup archive format {version} is not supported (this version reads"
                f" {VERSION}): restore it with the Carewire version that wrote it",
                code="unsupported-version",
            )
        if kdf != secret.kdf:
            wanted = "a passphrase" if kdf == Kdf.PASSPHRASE else "a key file"
            raise BackupError(f"this archive was encrypted with {wanted}", code="wrong-key")
        if kdf == Kdf.PASSPHRASE and not (10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
            raise BackupError("the archive header is damaged", code="tampered")
        self._aead = AESGCM(_derive(secret, salt, log2_n, r, p))
        head, check = header[: _HEAD.size], header[_HEAD.size :]
        try:
            self._aead.decrypt(_nonce(prefix, _CHECK_COUNTER, is_last=True), check, head)
        except InvalidTag:
            raise BackupError(
                "wrong backup key or passphrase (or the archive header was altered)",
                code="wrong-key",
            ) from None
        self._header, self._prefix, self._source = header, prefix, source
        self._counter = 0
        self._plain = bytearray()
        self._pending = self._read_length()
        self._done = False

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of plaintext (all that is left when ``size`` < 0)."""
        while not self._done and (size < 0 or len(self._plain) < size):
            self._next_frame()
        if size < 0:
            size = len(self._plain)
        out = bytes(self._plain[:size])
        del self._plain[:size]
        return out

    def _read_length(self) -> int | None:
        raw = self._source.read(_LENGTH.size)
        if not raw:
            return None
        if len(raw) < _LENGTH.size:
            raise BackupError("the archive is truncated", code="tampered")
        return int(_LENGTH.unpack(raw)[0])

    def _next_frame(self) -> None:
        length = self._pending
        if length is None:
            raise BackupError(
                "the archive is truncated (its last part is missing)", code="tampered"
            )
        if not TAG <= length <= CHUNK + TAG:
            raise BackupError("the archive is damaged or was altered", code="tampered")
        sealed = self._source.read(length)
        if len(sealed) < length:
            raise BackupError("the archive is truncated", code="tampered")
        self._pending = self._read_length()
        is_last = self._pending is None
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._counter, is_last=is_last), sealed, self._header
            )
        except InvalidTag:
            raise BackupError(
                f"the archive is damaged or was altered (part {self._counter + 1} does not"
                " authenticate)",
                code="tampered",
            ) from None
        self._counter += 1
        self._plain += plain
        self._done = is_last
