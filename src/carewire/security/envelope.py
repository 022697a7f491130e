"""Field-level envelope encryption at rest (AES-256-GCM) and keyed blind indexes.

Theory of operation:

- A **key-encryption key** (KEK, :class:`Kek`) lives outside the database
  (a key file or an environment variable, :mod:`carewire.security.keys`; a
  hospital key service can implement the same two calls). It only wraps and
  unwraps data keys.
- **Data keys** (DEKs) are random 256-bit AES keys. They are stored in the
  database wrapped by the KEK, each with an integer key id
  (:mod:`carewire.security.keyring` loads and rotates them). The newest
  *active* data key encrypts new values; every older one still decrypts.
  One **index key** (stored the same way) keys the blind indexes.
- A :class:`Keyring` holds the unwrapped keys in memory, one
  :class:`~cryptography.hazmat.primitives.ciphers.aead.AESGCM` object per
  key, and encrypts and decrypts synchronously (no I/O, no await): a value
  costs a few microseconds.

Ciphertext format (version 1), as bytes::

    0x01 | key id (4 bytes, big-endian) | nonce (12 bytes) | ciphertext + tag (16 bytes)

The version byte and key id are part of the associated data, so neither can
be altered. The caller's associated data (``aad``) names where the value
lives (``b"offline_messages.stanza|alice"``): a value copied to another
table, column or owner no longer decrypts. In text columns the same bytes
are stored as :data:`TEXT_PREFIX` followed by base64 (:meth:`Keyring.seal_text`);
a text value without the prefix is a plaintext value written before
encryption was enabled, and reads return it as it is.

Blind index: ``HMAC-SHA-256(K_ctx, value)`` in hex, where ``K_ctx`` is
derived from the index key with HKDF-SHA-256 for each ``context`` (say
``"PATIENTS.mrn"``), so equal values give equal indexes within one context
only. The index key is never rotated by ``carewire keys rotate`` (that would
change every stored index); rotating the KEK re-wraps it like a data key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carewire.errors import CarewireError
from carewire.randomness import random_bytes

#: The format version byte of every ciphertext this module writes.
VERSION = 1
#: What marks an encrypted value in a text column (``cw1:`` + base64).
TEXT_PREFIX = "cw1:"
#: Bytes of a data key (AES-256).
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(">BI")
_OVERHEAD = _HEADER.size + NONCE_SIZE + TAG_SIZE


class EncryptionError(CarewireError):
    """A value could not be encrypted or decrypted.

    Codes: ``unknown-key`` (its data key is not loaded: a newer key another
    process made, or a lost one), ``tampered`` (the value, its associated
    data or the key is wrong), ``malformed`` (not a ciphertext of a known
    version), ``no-key`` (no active data key or index key is loaded).
    """

    code = "encryption-error"


class Purpose:
    """What a stored key is for (the ``purpose`` of a ``data_keys`` row)."""

    DATA = "data"
    INDEX = "index"


class Kek(Protocol):
    """A key-encryption key: wraps and unwraps data keys (a KMS-style interface).

    A hospital key service plugs in by implementing these two calls (plus an
    id that names the key, so a stored wrapped key says which KEK opens it).
    """

    @property
    def kek_id(self) -> str:
        """A short, stable, non-secret name of this KEK (stored beside each wrapped key)."""
        ...

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """``key`` encrypted under the KEK, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """The key :meth:`wrap` encrypted.

        Raises:
            EncryptionError: Wrong KEK, wrong ``aad`` or a damaged value (``tampered``).
        """
        ...


class LocalKek:
    """A KEK held in this process (from a key file or an environment variable), AES-256-GCM."""

    __slots__ = ("_aead", "_id")

    def __init__(self, key: bytes) -> None:
        """Use the 32-byte ``key``.

        Raises:
            EncryptionError: ``key`` is not 32 bytes (``malformed``).
        """
        if len(key) != KEY_SIZE:
            raise EncryptionError(
                f"a key-encryption key has {KEY_SIZE} bytes, got {len(key)}", code="malformed"
            )
        self._aead = AESGCM(key)
        digest = hmac.new(key, b"carewire key-encryption key id", hashlib.sha256).hexdigest()
        self._id = "local:" + digest[:16]

    @property
    def kek_id(self) -> str:
        """``local:`` and 16 hex digits of an HMAC of the key (reveals nothing of it)."""
        return self._id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """``nonce | AES-GCM(key)``."""
        nonce = random_bytes(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, key, aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """The key, or :class:`EncryptionError` (``tampered``)."""
        try:
            return self._aead.decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
        except (InvalidTag, ValueError):
            raise EncryptionError(
                f"the data key does not open with key-encryption key {self._id}", code="tampered"
            ) from None


def generate_key() -> bytes:
    """A fresh random 256-bit key (a data key, an index key or a KEK)."""
    return AESGCM.generate_key(bit_length=KEY_SIZE * 8)


def wrap_aad(purpose: str) -> bytes:
    """The associated data a stored key of ``purpose`` is wrapped with."""
    return b"carewire stored key|" + purpose.encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyInfo:
    """One unwrapped key of a :class:`Keyring` (the secret itself is not shown).

    Attributes:
        key_id: Its id (the one in ciphertexts).
        purpose: :attr:`Purpose.DATA` or :attr:`Purpose.INDEX`.
        active_from: When a data key starts encrypting new values (newest wins).
    """

    key_id: int
    purpose: str
    active_from: datetime


class Keyring:
    """Unwrapped keys in memory: synchronous encrypt, decrypt and blind index.

    Build it empty and :meth:`add` keys (the key service loads them from the
    database); a keyring with ``encrypt_new=False`` (measurements only)
    writes plaintext but still reads every ciphertext it has keys for.
    """

    def __init__(self, *, encrypt_new: bool = True) -> None:
        """An empty keyring.

        Args:
            encrypt_new: Whether :meth:`seal`/:meth:`seal_text` encrypt (True by default).
        """
        self.encrypt_new = encrypt_new
        self._aeads: dict[int, AESGCM] = {}
        self._infos: dict[int, KeyInfo] = {}
        self._active: tuple[int, AESGCM] | None = None
        self._index_key: bytes | None = None
        self._index_id: int | None = None
        self._index_keys: dict[str, bytes] = {}

    # -- keys ---------------------------------------------------------------------------------

    def add(self, info: KeyInfo, key: bytes) -> None:
        """Hold ``key`` (unwrapped) under ``info.key_id``.

        Raises:
            EncryptionError: ``key`` is not 32 bytes (``malformed``).
        """
        if len(key) != KEY_SIZE:
            raise EncryptionError(f"key {info.key_id} has {len(key)} bytes", code="malformed")
        self._infos[info.key_id] = info
        if info.purpose == Purpose.INDEX:
            # The oldest index key wins, in every process alike (two processes
            # starting at once may each have stored one).
            if self._index_id is None or info.key_id < self._index_id:
                self._index_key, self._index_id = key, info.key_id
                self._index_keys.clear()
            return
        self._aeads[info.key_id] = AESGCM(key)

    def has(self, key_id: int) -> bool:
        """Whether the key ``key_id`` is loaded."""
        return key_id in self._infos

    @property
    def keys(self) -> list[KeyInfo]:
        """The loaded keys, by id."""
        return [self._infos[i] for i in sorted(self._infos)]

    def activate(self, now: datetime) -> int | None:
        """Choose the data key for new values: the newest whose ``active_from`` has passed.

        When none has passed yet (a clock behind the one that stored the keys),
        the earliest one: a keyring with data keys always has an active one.

        Returns:
            Its id, or None when no data key is loaded.
        """
        data = [i for i in self._infos.values() if i.purpose == Purpose.DATA]
        if not data:
            self._active = None
            return None
        ready = [i for i in data if i.active_from <= now]
        if ready:
            best = max(ready, key=lambda i: (i.active_from, i.key_id)).key_id
        else:
            best = min(data, key=lambda i: (i.active_from, i.key_id)).key_id
        self._active = (best, self._aeads[best])
        return best

    @property
    def active_id(self) -> int | None:
        """The id of the data key that encrypts new values."""
        return None if self._active is None else self._active[0]

    # -- values -------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """``plaintext`` encrypted under the active data key, bound to ``aad`` (always encrypts).

        Raises:
            EncryptionError: No data key is active (``no-key``).
        """
        if self._active is None:
            raise EncryptionError("no data key is loaded", code="no-key")
        key_id, aead = self._active
        header = _HEADER.pack(VERSION, key_id)
        nonce = random_bytes(NONCE_SIZE)
        return header + nonce + aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        """The plaintext of a value :meth:`encrypt` made with the same ``aad``.

        Raises:
            EncryptionError: Unknown version (``malformed``), a key not loaded
                (``unknown-key``), or a value, ``aad`` or key that does not
                match (``tampered``).
        """
        if len(blob) < _OVERHEAD or blob[0] != VERSION:
            raise EncryptionError("not a ciphertext of a known version", code="malformed")
        _, key_id = _HEADER.unpack_from(blob)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise EncryptionError(f"data key {key_id} is not loaded", code="unknown-key")
        header = blob[: _HEADER.size]
        nonce = blob[_HEADER.size : _HEADER.size + NONCE_SIZE]
        try:
            return aead.decrypt(nonce, blob[_HEADER.size + NONCE_SIZE :], header + aad)
        except InvalidTag:
            raise EncryptionError(
                "the value does not decrypt (altered, moved or a wrong key)", code="tampered"
            ) from None

    @staticmethod
    def key_id_of(blob: bytes) -> int:
        """The data key id a ciphertext names (no decryption).

        Raises:
            EncryptionError: Not a ciphertext of a known version (``malformed``).
        """
        if len(blob) < _OVERHEAD or blob[0] != VERSION:
            raise EncryptionError("not a ciphertext of a known version", code="malformed")
        return int(_HEADER.unpack_from(blob)[1])

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Like :meth:`encrypt`, but plaintext is returned as it is when ``encrypt_new`` is off."""
        return self.encrypt(plaintext, aad=aad) if self.encrypt_new else plaintext

    def seal_text(self, value: str, *, aad: bytes) -> str:
        """A text value for a text column: ``cw1:`` + base64 of its ciphertext.

        The value as it is when ``encrypt_new`` is off.
        """
        if not self.encrypt_new:
            return value
        blob = self.encrypt(value.encode("utf-8"), aad=aad)
        return TEXT_PREFIX + base64.b64encode(blob).decode("ascii")

    def open_text(self, value: str, *, aad: bytes) -> str:
        """The text :meth:`seal_text` sealed; a value without the prefix is returned as it is.

        Raises:
            EncryptionError: A sealed value that does not decrypt (see :meth:`decrypt`).
        """
        if not value.startswith(TEXT_PREFIX):
            return value
        return self.decrypt(text_blob(value), aad=aad).decode("utf-8")

    # -- blind indexes ------------------------------------------------------------------------

    def blind_index(self, value: str, *, context: str) -> str:
        """A keyed, deterministic index of ``value`` for equality lookups (64 hex digits).

        Equal ``value`` and ``context`` give equal results; nothing about
        ``value`` can be learnt from it without the index key. The value is
        taken exactly as given: normalise it first (case, spaces) as the
        lookup needs.

        Raises:
            EncryptionError: No index key is loaded (``no-key``).
        """
        key = self._index_keys.get(context)
        if key is None:
            if self._index_key is None:
                raise EncryptionError("no index key is loaded", code="no-key")
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"carewire blind index|" + context.encode("utf-8"),
            )
            key = self._index_keys[context] = hkdf.derive(self._index_key)
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def is_sealed_text(value: str) -> bool:
    """Whether a text column's value is a ciphertext (not plaintext from before encryption)."""
    return value.startswith(TEXT_PREFIX)


def text_blob(value: str) -> bytes:
    """The ciphertext bytes of a sealed text value.

    Raises:
        EncryptionError: Not valid base64 after the prefix (``malformed``).
    """
    try:
        # Not validated character by character: AES-GCM's tag rejects any change anyway.
        return binascii.a2b_base64(value[len(TEXT_PREFIX) :])
    except (binascii.Error, ValueError):
        raise EncryptionError("a sealed value is not valid base64", code="malformed") from None


def sealed_key_ids(values: Iterable[str]) -> set[int]:
    """The data key ids the sealed ones of ``values`` name (plaintext ones are skipped)."""
    return {Keyring.key_id_of(text_blob(v)) for v in values if v.startswith(TEXT_PREFIX)}


def ephemeral_keyring(*, encrypt_new: bool = True) -> Keyring:
    """A keyring with fresh random keys held nowhere else (tests, throw-away stores).

    Values it seals can be read only through this object.
    """
    ring = Keyring(encrypt_new=encrypt_new)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ring.add(KeyInfo(key_id=1, purpose=Purpose.DATA, active_from=epoch), generate_key())
    ring.add(KeyInfo(key_id=2, purpose=Purpose.INDEX, active_from=epoch), generate_key())
    ring.activate(epoch)
    return ring
