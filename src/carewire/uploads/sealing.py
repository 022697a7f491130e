"""Files encrypted at rest in chunks, with the message bodies' keys (docs/encryption.md).

Theory of operation. A file is cut into chunks of :data:`CHUNK` plaintext
bytes (the last one shorter). Each chunk is one value of the envelope
scheme (:meth:`Keyring.encrypt`: AES-256-GCM under the active data key, its
own random nonce, the key id in the header), and its associated data names
the file, the chunk's index and whether it is the last::

    b"uploads|" + file id + b"|" + index (8 bytes, big-endian) + final (1 byte)

So a chunk moved to another file or place does not decrypt (reordering), and
a file cut at a chunk boundary ends in a chunk not marked final (truncation):
both are :class:`EncryptionError` ``tampered``. The file on disk is
:data:`MAGIC` followed by the chunks' ciphertexts back to back; each is
:data:`OVERHEAD` bytes longer than its plaintext, so their boundaries follow
from :data:`CHUNK`. Only one chunk is held in memory at a time, by writer and
reader alike.

:class:`ChunkSealer` and :func:`open_chunks` are sans-IO: bytes in, bytes
out; the service does the file I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from carewire.security.envelope import NONCE_SIZE, TAG_SIZE, EncryptionError, Keyring

#: Plaintext bytes per chunk.
CHUNK = 65_536
#: What each chunk's ciphertext adds: version, key id, nonce, tag.
OVERHEAD = 5 + NONCE_SIZE + TAG_SIZE
#: The first bytes of every encrypted file (format version 1).
MAGIC = b"CWU1"
_INDEX = struct.Struct(">Q")


def chunk_aad(file_id: str, index: int, *, is_final: bool) -> bytes:
    """The associated data of chunk ``index`` of ``file_id``."""
    return b"uploads|" + file_id.encode("ascii") + b"|" + _INDEX.pack(index) + bytes([is_final])


def sealed_size(size: int) -> int:
    """The size on disk of a file of ``size`` plaintext bytes (``size`` ≥ 1)."""
    chunks = -(-size // CHUNK)
    return len(MAGIC) + size + chunks * OVERHEAD


class ChunkSealer:
    """Encrypts a file of known ``size`` fed in pieces of any length; yields what to write."""

    def __init__(self, keyring: Keyring, file_id: str, size: int) -> None:
        """Seal ``size`` bytes (≥ 1) as ``file_id`` under the keyring's active data key."""
        self._ring = keyring
        self._file_id = file_id
        self._size = size
        self._taken = 0
        self._index = 0
        self._buffer = bytearray()
        self._started = False
        self._is_done = False

    @property
    def taken(self) -> int:
        """Plaintext bytes fed so far."""
        return self._taken

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Take ``data``; yield the ciphertext of every chunk now complete.

        Raises:
            ValueError: More than ``size`` bytes were fed.
        """
        self._taken += len(data)
        if self._taken > self._size:
            raise ValueError("more bytes than the file's size")
        if not self._started:
            self._started = True
            yield MAGIC
        self._buffer += data
        while len(self._buffer) >= CHUNK and self._sent + CHUNK < self._size:
            yield self._seal(bytes(self._buffer[:CHUNK]), is_final=False)
            del self._buffer[:CHUNK]
        if self._taken == self._size and not self._is_done:
            self._is_done = True
            yield self._seal(bytes(self._buffer), is_final=True)
            self._buffer.clear()

    @property
    def _sent(self) -> int:
        return self._index * CHUNK

    def _seal(self, chunk: bytes, *, is_final: bool) -> bytes:
        aad = chunk_aad(self._file_id, self._index, is_final=is_final)
        self._index += 1
        return self._ring.encrypt(chunk, aad=aad)


def frame_sizes(size: int) -> Iterator[tuple[int, bool]]:
    """The ciphertext length of each chunk of a ``size``-byte file, and whether it is the last."""
    whole, rest = divmod(size, CHUNK)
    if rest == 0:
        whole, rest = whole - 1, CHUNK
    for _ in range(whole):
        yield CHUNK + OVERHEAD, False
    yield rest + OVERHEAD, True


def open_chunk(
    keyring: Keyring, file_id: str, index: int, frame: bytes, *, is_final: bool
) -> bytes:
    """The plaintext of chunk ``index`` (``frame`` as read from disk).

    Raises:
        EncryptionError: The chunk was altered, moved, cut, or its key is not loaded.
    """
    return keyring.decrypt(frame, aad=chunk_aad(file_id, index, is_final=is_final))


def check_magic(head: bytes) -> None:
    """Raise unless ``head`` is :data:`MAGIC`.

    Raises:
        EncryptionError: Not an encrypted file of a known format (``malformed``).
    """
    if head != MAGIC:
        raise EncryptionError("not an encrypted upload of a known format", code="malformed")
