"""Chunked file encryption (carewire.uploads.sealing): pure, no event loop."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewire.security.envelope import EncryptionError, Keyring, ephemeral_keyring
from carewire.uploads.sealing import (
    CHUNK,
    MAGIC,
    OVERHEAD,
    ChunkSealer,
    check_magic,
    frame_sizes,
    open_chunk,
    sealed_size,
)

RING = ephemeral_keyring()


def seal(data: bytes, pieces: list[int] | None = None, file_id: str = "f" * 32) -> bytes:
    sealer = ChunkSealer(RING, file_id, len(data))
    out = bytearray()
    at = 0
    for n in [*(pieces or []), len(data)]:
        for frame in sealer.feed(data[at : at + n]):
            out += frame
        at = min(len(data), at + n)
    for frame in sealer.feed(b""):  # a last empty read changes nothing
        out += frame
    return bytes(out)


def frames(sealed: bytes, size: int) -> list[tuple[bytes, bool]]:
    check_magic(sealed[: len(MAGIC)])
    at, out = len(MAGIC), []
    for n, is_final in frame_sizes(size):
        out.append((sealed[at : at + n], is_final))
        at += n
    assert at == len(sealed)
    return out


def unseal(sealed: bytes, size: int, file_id: str = "f" * 32, ring: Keyring = RING) -> bytes:
    return b"".join(
        open_chunk(ring, file_id, i, frame, is_final=is_final)
        for i, (frame, is_final) in enumerate(frames(sealed, size))
    )


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    assert len(sealed) == sealed_size(size)
    assert unseal(sealed, size) == data


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=3 * CHUNK + 5),
    pieces=st.lists(st.integers(min_value=0, max_value=CHUNK + 3), max_size=8),
)
def test_any_feeding_gives_the_same_plaintext_back(size: int, pieces: list[int]) -> None:
    data = bytes(i % 251 for i in range(size))
    assert unseal(seal(data, pieces), size) == data


def test_each_chunk_has_its_own_nonce_and_no_plaintext_shows() -> None:
    data = b"A" * (2 * CHUNK)
    sealed = seal(data)
    (first, _), (second, _) = frames(sealed, len(data))
    assert first[5:17] != second[5:17]
    assert b"A" * 32 not in sealed
    assert len(first) == CHUNK + OVERHEAD


def test_feeding_more_than_the_size_is_refused() -> None:
    sealer = ChunkSealer(RING, "f" * 32, 3)
    with pytest.raises(ValueError, match="more bytes"):
        list(sealer.feed(b"abcd"))


def test_reordered_truncated_moved_or_altered_chunks_do_not_open() -> None:
    size = 2 * CHUNK + 10
    data = os.urandom(size)
    parts = frames(seal(data), size)
    (a, _), (b, _), (c, _) = parts
    with pytest.raises(EncryptionError) as swapped:
        open_chunk(RING, "f" * 32, 0, b, is_final=False)
    assert swapped.value.code == "tampered"
    # Cut after the second chunk: it opens only as a non-final chunk.
    with pytest.raises(EncryptionError):
        open_chunk(RING, "f" * 32, 1, b, is_final=True)
    with pytest.raises(EncryptionError):  # another file's chunk
        open_chunk(RING, "e" * 32, 2, c, is_final=True)
    altered = bytearray(a)
    altered[-1] ^= 1
    with pytest.raises(EncryptionError):
        open_chunk(RING, "f" * 32, 0, bytes(altered), is_final=False)
    with pytest.raises(EncryptionError) as other_key:
        open_chunk(ephemeral_keyring(), "f" * 32, 0, a, is_final=False)
    assert other_key.value.code == "tampered"


def test_unknown_format_is_malformed() -> None:
    with pytest.raises(EncryptionError) as err:
        check_magic(b"CWU2")
    assert err.value.code == "malformed"
