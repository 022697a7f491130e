"""The upload service on its SQL store (carewire.uploads.service), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.clock import FakeClock
from carewire.security.envelope import EncryptionError, ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.uploads import SqlUploadStore
from carewire.uploads import UploadError, UploadService, UploadSettings, UploadState
from carewire.uploads.sealing import CHUNK, MAGIC, OVERHEAD
from carewire.uploads.service import token_hash
from tests.storage.conftest import db_url

__all__ = ["db_url"]

WEEK = timedelta(days=7)


@pytest.fixture
async def svc(db_url: str, tmp_path: Path) -> AsyncIterator[UploadService]:
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    settings = UploadSettings(
        directory=tmp_path / "uploads",
        max_file_size=4 * CHUNK,
        quota=6 * CHUNK,
        public_url="https://example.test",
    )
    try:
        yield UploadService(SqlUploadStore(db), ephemeral_keyring(), FakeClock(), settings)
    finally:
        await db.close()


async def body(data: bytes, piece: int = 10_000) -> AsyncIterator[bytes]:
    for at in range(0, len(data), piece):
        yield data[at : at + piece]


def parts(url: str) -> tuple[str, str]:
    token, _, name = url.removeprefix("https://example.test/upload/").partition("/")
    return token, name


async def upload(svc: UploadService, data: bytes, owner: str = "alice") -> tuple[str, str]:
    slot = await svc.request_slot(
        owner=owner, filename="f.bin", size=len(data), content_type=None, lifetime=WEEK
    )
    token, name = parts(slot.put_url)
    await svc.receive(token, name, length=len(data), content_type=None, body=body(data))
    return token, name


async def read_all(svc: UploadService, token: str, name: str) -> bytes:
    download = await svc.download(token, name)
    return b"".join([c async for c in download.chunks])


async def test_round_trip_and_the_row(svc: UploadService) -> None:
    data = bytes(range(256)) * 1000
    token, name = await upload(svc, data)
    assert await read_all(svc, token, name) == data
    record = await svc.store.by_token(token_hash(token))
    assert record is not None and record.state is UploadState.STORED
    assert record.sha256 is not None and record.sha256.startswith("cw1:")


async def test_a_cut_file_fails_instead_of_serving_a_prefix(svc: UploadService) -> None:
    data = b"z" * (2 * CHUNK + 5)
    token, name = await upload(svc, data)
    record = await svc.store.by_token(token_hash(token))
    assert record is not None
    path = svc.path_of(record.file_id)
    sealed = path.read_bytes()
    # Cut at a chunk boundary: the last chunk left is not marked final.
    path.write_bytes(sealed[: len(MAGIC) + 2 * (CHUNK + OVERHEAD)])
    with pytest.raises(EncryptionError) as err:
        await read_all(svc, token, name)
    assert err.value.code == "tampered"
    path.write_bytes(sealed + b"x")  # bytes appended
    with pytest.raises(EncryptionError):
        await read_all(svc, token, name)


async def test_claim_is_once_and_a_failed_put_gives_the_slot_back(svc: UploadService) -> None:
    slot = await svc.request_slot(
        owner="alice", filename="f.bin", size=100, content_type=None, lifetime=WEEK
    )
    token, name = parts(slot.put_url)
    now = svc.clock.now()
    assert await svc.store.claim(token_hash(token), now)
    assert not await svc.store.claim(token_hash(token), now)
    with pytest.raises(UploadError) as busy:
        await svc.receive(token, name, length=100, content_type=None, body=body(b"x" * 100))
    assert busy.value.code == "conflict"
    record = await svc.store.by_token(token_hash(token))
    assert record is not None
    await svc.store.release(record.file_id)
    with pytest.raises(UploadError) as short:  # the body stops early (a client gone)
        await svc.receive(token, name, length=100, content_type=None, body=body(b"x" * 60))
    assert short.value.code == "size-mismatch"
    assert not list(svc.settings.directory.rglob("*.part"))
    await svc.receive(token, name, length=100, content_type=None, body=body(b"x" * 100))
    assert await read_all(svc, token, name) == b"x" * 100


async def test_quota_counts_stored_files_and_open_slots_of_the_owner(svc: UploadService) -> None:
    await upload(svc, b"a" * (3 * CHUNK))
    await svc.request_slot(
        owner="alice", filename="g", size=3 * CHUNK, content_type=None, lifetime=WEEK
    )
    with pytest.raises(UploadError) as err:
        await svc.request_slot(
            owner="alice", filename="h", size=1, content_type=None, lifetime=WEEK
        )
    assert err.value.code == "quota"
    await svc.request_slot(owner="bob", filename="h", size=1, content_type=None, lifetime=WEEK)


async def test_retention_deletes_the_owners_older_files_only(svc: UploadService) -> None:
    old_a = await upload(svc, b"old", "alice")
    old_b = await upload(svc, b"old", "bob")
    svc.clock.advance(3600)  # type: ignore[attr-defined]
    new_a = await upload(svc, b"new", "alice")
    cutoff = svc.clock.now() - timedelta(minutes=30)
    assert await svc.count_created_before(["alice"], cutoff) == 1
    assert await svc.purge_created_before(["alice"], cutoff) == 1
    with pytest.raises(UploadError):
        await svc.download(*old_a)
    assert await read_all(svc, *old_b) == b"old"
    assert await read_all(svc, *new_a) == b"new"
    assert len([p for p in svc.settings.directory.rglob("*") if p.is_file()]) == 2


async def test_an_upload_swept_while_it_arrived_leaves_nothing(svc: UploadService) -> None:
    slot = await svc.request_slot(
        owner="alice", filename="f.bin", size=20_000, content_type=None, lifetime=WEEK
    )
    token, name = parts(slot.put_url)
    record = await svc.store.by_token(token_hash(token))
    assert record is not None

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"x" * 10_000
        await svc.store.delete([record.file_id])  # the sweep, while the PUT is under way
        yield b"x" * 10_000

    with pytest.raises(UploadError) as err:
        await svc.receive(token, name, length=20_000, content_type=None, body=slow_body())
    assert err.value.code == "expired"
    assert not [p for p in svc.settings.directory.rglob("*") if p.is_file()]
