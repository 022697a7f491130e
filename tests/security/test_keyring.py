"""The key service on SQLite and PostgreSQL: first keys, reloads, rotation, a second process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from carewire.clock import FakeClock
from carewire.security.envelope import EncryptionError, LocalKek, Purpose, generate_key
from carewire.security.keyring import KeyService
from carewire.security.keys import ConfiguredKek, write_key_file
from carewire.storage import Database, migrate
from carewire.storage.data_keys import SqlDataKeyStore
from tests.templates import prefill

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _open(db_url: str) -> Database:
    await migrate.upgrade(await prefill(db_url))
    return await Database.open(db_url)


def _service(db: Database, path: Path, clock: FakeClock) -> KeyService:
    return KeyService(
        SqlDataKeyStore(db), ConfiguredKek(key_file=path, env={}), clock, refresh_interval=30
    )


async def test_first_start_stores_a_data_key_and_an_index_key(db_url: str, tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    write_key_file(kek, [generate_key()])
    db = await _open(db_url)
    try:
        keys = _service(db, kek, FakeClock(T0))
        ring = await keys.load()
        stored = await keys.stored()
        assert sorted(r.purpose for r in stored) == [Purpose.DATA, Purpose.INDEX]
        assert ring.active_id is not None
        blob = ring.encrypt(b"hello", aad=b"a")
        index = ring.blind_index("MRN1", context="PATIENTS.mrn")
        # A second start (or another process) reads the same keys and makes none.
        again = await _service(db, kek, FakeClock(T0)).load()
        assert again.decrypt(blob, aad=b"a") == b"hello"
        assert again.blind_index("MRN1", context="PATIENTS.mrn") == index
        assert len(await keys.stored()) == 2
    finally:
        await db.close()


async def test_wrong_kek_fails_at_start(db_url: str, tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    write_key_file(kek, [generate_key()])
    db = await _open(db_url)
    try:
        await _service(db, kek, FakeClock(T0)).load()
        write_key_file(kek, [generate_key()])  # the file replaced by another key
        with pytest.raises(EncryptionError) as exc:
            await _service(db, kek, FakeClock(T0)).load()
        assert exc.value.code == "unknown-key"
    finally:
        await db.close()


async def test_rotation_rewraps_and_a_running_service_follows(db_url: str, tmp_path: Path) -> None:
    kek_file = tmp_path / "kek"
    old = generate_key()
    write_key_file(kek_file, [old])
    clock = FakeClock(T0)
    db = await _open(db_url)
    try:
        server = _service(db, kek_file, clock)  # the running server
        ring = await server.load()
        before = ring.encrypt(b"before", aad=b"a")
        first_active = ring.active_id

        new = generate_key()
        write_key_file(kek_file, [new, old])  # the CLI: new key first, old one kept
        cli = _service(db, kek_file, clock)
        await cli.load()
        rotation = await cli.rotate(LocalKek(new), new_data_key=True)
        write_key_file(kek_file, [new])  # old key dropped once re-wrapped
        assert rotation.rewrapped == 2 and rotation.new_kek_id == LocalKek(new).kek_id
        assert rotation.old_kek_ids == (LocalKek(old).kek_id,)
        assert {r.kek_id for r in await cli.stored()} == {LocalKek(new).kek_id}

        # The server loads the new data key (re-reading the key file) but waits to use it.
        await server.refresh()
        assert ring.has(rotation.new_data_key or 0)
        assert ring.active_id == first_active
        clock.advance(server.activation_delay.total_seconds())
        await server.refresh()
        assert ring.active_id == rotation.new_data_key
        assert ring.decrypt(before, aad=b"a") == b"before"

        # A restart with only the new key reads everything.
        restarted = await _service(db, kek_file, clock).load()
        assert restarted.decrypt(before, aad=b"a") == b"before"
        assert restarted.decrypt(ring.encrypt(b"after", aad=b"a"), aad=b"a") == b"after"
    finally:
        await db.close()
