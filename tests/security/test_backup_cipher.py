"""The backup archive's encryption: round trips, wrong keys, and every way to alter an archive."""

from __future__ import annotations

import base64
import io
import os
import struct
from pathlib import Path

import pytest

from carewire.security.backup_cipher import (
    CHUNK,
    HEADER_SIZE,
    MIN_PASSPHRASE,
    ArchiveReader,
    ArchiveWriter,
    BackupError,
    Kdf,
    Secret,
)

KEY = Secret(Kdf.KEY_FILE, b"k" * 32)
#: scrypt at its cheapest accepted cost: the format, not the work factor, is under test.
CHEAP = 10


def seal(plain: bytes, secret: Secret = KEY) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out, secret, scrypt_log2_n=CHEAP)
    for start in range(0, len(plain), 100_000):  # writes of any size
        writer.write(plain[start : start + 100_000])
    writer.close()
    return out.getvalue()


def unseal(archive: bytes, secret: Secret = KEY) -> bytes:
    return ArchiveReader(io.BytesIO(archive), secret).read()


def frames(archive: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each frame after the header."""
    found, at = [], HEADER_SIZE
    while at < len(archive):
        (length,) = struct.unpack(">I", archive[at : at + 4])
        found.append((at, length))
        at += 4 + length
    return found


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 2 * CHUNK + 12345])
def test_round_trip_any_size(size: int) -> None:
    plain = os.urandom(size)
    archive = seal(plain)
    assert unseal(archive) == plain
    assert len(frames(archive)) == max(1, -(-size // CHUNK))


def test_reads_in_small_pieces() -> None:
    plain = os.urandom(CHUNK + 10)
    reader = ArchiveReader(io.BytesIO(seal(plain)), KEY)
    got = b"".join(iter(lambda: reader.read(4096), b""))
    assert got == plain


def test_passphrase_round_trip_and_digest() -> None:
    secret = Secret.passphrase("correct horse battery staple")
    out = io.BytesIO()
    writer = ArchiveWriter(out, secret, scrypt_log2_n=CHEAP)
    writer.write(b"hello")
    writer.close()
    assert unseal(out.getvalue(), secret) == b"hello"
    import hashlib

    assert writer.sha256 == hashlib.sha256(out.getvalue()).hexdigest()


def test_wrong_key_is_told_before_any_content() -> None:
    archive = seal(b"secret")
    with pytest.raises(BackupError) as caught:
        ArchiveReader(io.BytesIO(archive), Secret(Kdf.KEY_FILE, b"x" * 32))
    assert caught.value.code == "wrong-key"
    wrong = Secret.passphrase("not the passphrase at all")
    with pytest.raises(BackupError, match="encrypted with a key file") as caught:
        ArchiveReader(io.BytesIO(archive), wrong)
    assert caught.value.code == "wrong-key"


def test_altered_content_is_tampered() -> None:
    archive = bytearray(seal(os.urandom(2 * CHUNK)))
    offset, _ = frames(bytes(archive))[1]
    archive[offset + 100] ^= 1
    reader = ArchiveReader(io.BytesIO(bytes(archive)), KEY)
    with pytest.raises(BackupError, match="part 2 does not authenticate") as caught:
        reader.read()
    assert caught.value.code == "tampered"


def test_altered_header_fails_the_key_check() -> None:
    archive = bytearray(seal(b"x"))
    archive[10] ^= 1  # in the salt
    with pytest.raises(BackupError) as caught:
        ArchiveReader(io.BytesIO(bytes(archive)), KEY)
    assert caught.value.code == "wrong-key"


@pytest.mark.parametrize("cut", ["last-frame", "mid-frame", "length"])
def test_truncation_is_tampered(cut: str) -> None:
    archive = seal(os.urandom(CHUNK + 500))
    (_, _), (last_at, last_len) = frames(archive)
    end = {"last-frame": last_at, "mid-frame": last_at + 4 + last_len // 2, "length": last_at + 2}
    reader = ArchiveReader(io.BytesIO(archive[: end[cut]]), KEY)
    with pytest.raises(BackupError) as caught:
        reader.read()
    assert caught.value.code == "tampered"


def test_frames_swapped_or_appended_are_tampered() -> None:
    a = seal(os.urandom(2 * CHUNK + 1))
    (f1, l1), (f2, l2), _ = frames(a)
    swapped = a[:f1] + a[f2 : f2 + 4 + l2] + a[f1 : f1 + 4 + l1] + a[f2 + 4 + l2 :]
    with pytest.raises(BackupError, match="does not authenticate"):
        ArchiveReader(io.BytesIO(swapped), KEY).read()
    other = seal(b"more")
    extended = a + other[HEADER_SIZE:]
    with pytest.raises(BackupError) as caught:
        ArchiveReader(io.BytesIO(extended), KEY).read()
    assert caught.value.code == "tampered"


def test_not_an_archive_and_unknown_version() -> None:
    with pytest.raises(BackupError) as caught:
        ArchiveReader(io.BytesIO(b"PK\x03\x04 a zip file" + bytes(100)), KEY)
    assert caught.value.code == "not-an-archive"
    archive = bytearray(seal(b"x"))
    archive[6] = 9
    with pytest.raises(BackupError, match="format 9 is not supported") as caught:
        ArchiveReader(io.BytesIO(bytes(archive)), KEY)
    assert caught.value.code == "unsupported-version"


def test_short_passphrase_is_refused() -> None:
    with pytest.raises(BackupError, match=f"at least {MIN_PASSPHRASE}") as caught:
        Secret.passphrase("short")
    assert caught.value.code == "bad-key"


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.key"
    raw = os.urandom(32)
    path.write_text("# the backup key\n" + base64.b64encode(raw).decode() + "\n")
    path.chmod(0o600)
    assert Secret.key_file(path) == Secret(Kdf.KEY_FILE, raw)
    path.chmod(0o644)
    with pytest.raises(BackupError, match="chmod 600"):
        Secret.key_file(path)
    path.write_text(base64.b64encode(b"short").decode())
    path.chmod(0o600)
    with pytest.raises(BackupError, match="base64 of 32 bytes"):
        Secret.key_file(path)
    with pytest.raises(BackupError, match="cannot read"):
        Secret.key_file(tmp_path / "missing.key")
