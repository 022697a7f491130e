"""Message content sealed at rest by the stores, on SQLite and PostgreSQL.

What is in the database is read back with plain SQL: no store may leave a
body in clear, every value reads back as written, a value moved to another
owner does not decrypt, values stored before encryption still read and are
sealed by the start-up pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.core.stores import StoredRoom
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.errors import ValidationError
from carewire.security.envelope import TEXT_PREFIX, EncryptionError
from carewire.storage.reseal import count_values, seal_plaintext
from tests.storage.factories import new_account

NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
BODY = "Pt in 12B: K+ 6.1, repeat draw"
STANZA = f"<message to='bob@x' type='chat'><body>{BODY}</body></message>"


@pytest.fixture
async def p(db_url: str) -> AsyncIterator[Assembly]:
    services = await assemble(Options(url=db_url, clock=FakeClock(NOW)))
    try:
        for login in ("alice", "bob"):
            await services.stores.accounts.create(new_account(login))
        yield services
    finally:
        await services.close()


async def _raw(p: Assembly, sql: str) -> list[tuple[object, ...]]:
    async with p.db.read("raw") as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


async def _exec(p: Assembly, sql: str, **params: object) -> None:
    async with p.db.transaction("raw") as txn:
        await txn.conn.execute(text(sql), params)


async def _message(p: Assembly, uuid: str, body: str) -> int:
    rec = await p.datasets.create(
        "MESSAGES",
        {"uuid": uuid, "received_at": NOW, "sent_at": NOW, "message": body, "elements": ""},
    )
    return int(rec.id)


async def test_every_store_seals_and_reads_back(p: Assembly) -> None:
    s = p.stores
    await s.offline.store("bob", STANZA, stamp=NOW, expires_at=NOW + timedelta(days=1))
    await s.held.hold("bob", STANZA, stamp=NOW, reason="dnd")
    room = StoredRoom(
        name="ward3",
        config='{"roomname": "Mr Smith, bed 4"}',
        subject=BODY,
        subject_by="alice",
        affiliations={"alice@x": "owner"},
    )
    await s.muc.save(room)
    message_id = await _message(p, "m-1", BODY)

    raw = [
        *await _raw(p, "SELECT stanza FROM offline_messages"),
        *await _raw(p, "SELECT stanza FROM held_messages"),
        *await _raw(p, "SELECT config, subject FROM muc_rooms"),
        *await _raw(p, "SELECT message FROM ds_messages"),
    ]
    values = [str(v) for row in raw for v in row]
    assert len(values) == 5
    assert all(v.startswith(TEXT_PREFIX) for v in values), values
    assert not any("K+ 6.1" in v or "Smith" in v for v in values)

    [stored] = await s.offline.fetch("bob", now=NOW)
    assert stored.stanza == STANZA
    [held] = await s.held.fetch("bob")
    assert held.stanza == STANZA
    assert await s.muc.rooms() == [room]
    assert (await p.datasets.get("MESSAGES", message_id)).values["message"] == BODY


async def test_a_value_moved_to_another_owner_does_not_decrypt(p: Assembly) -> None:
    await p.stores.offline.store("alice", STANZA, stamp=NOW, expires_at=NOW + timedelta(days=1))
    [(sealed,)] = await _raw(p, "SELECT stanza FROM offline_messages")
    await _exec(
        p,
        "INSERT INTO offline_messages (owner, stanza, stamp, expires_at)"
        " SELECT 'bob', stanza, stamp, expires_at FROM offline_messages",
    )
    assert [m.stanza for m in await p.stores.offline.fetch("alice", now=NOW)] == [STANZA]
    with pytest.raises(EncryptionError) as exc:
        await p.stores.offline.fetch("bob", now=NOW)
    assert exc.value.code == "tampered"
    assert str(sealed).startswith(TEXT_PREFIX)


async def test_plaintext_from_before_reads_and_is_sealed_by_the_pass(p: Assembly) -> None:
    message_id = await _message(p, "m-old", "placeholder")
    await _exec(p, "UPDATE ds_messages SET message = :b", b="old body in clear")
    await _exec(
        p,
        "INSERT INTO offline_messages (owner, stanza, stamp, expires_at)"
        " VALUES ('bob', :s, :t, :e)",
        s=STANZA,
        t=NOW.replace(tzinfo=None) if p.db.dialect == "sqlite" else NOW,
        e=(NOW + timedelta(days=1)).replace(tzinfo=None)
        if p.db.dialect == "sqlite"
        else NOW + timedelta(days=1),
    )
    # Readable as they are …
    assert (await p.datasets.get("MESSAGES", message_id)).values["message"] == "old body in clear"
    assert [m.stanza for m in await p.stores.offline.fetch("bob", now=NOW)] == [STANZA]
    counts = await count_values(p.db)
    assert counts["MESSAGES.message"] == (0, 1) and counts["offline_messages.stanza"] == (0, 1)

    # … then sealed, once: running the pass again finds nothing.
    sealed = await seal_plaintext(p.db, p.keyring)
    assert sealed == {"offline_messages.stanza": 1, "MESSAGES.message": 1}
    assert await seal_plaintext(p.db, p.keyring) == {}
    [(body,)] = await _raw(p, "SELECT message FROM ds_messages")
    assert str(body).startswith(TEXT_PREFIX) and "clear" not in str(body)
    assert (await p.datasets.get("MESSAGES", message_id)).values["message"] == "old body in clear"
    assert [m.stanza for m in await p.stores.offline.fetch("bob", now=NOW)] == [STANZA]
    assert (await count_values(p.db))["offline_messages.stanza"] == (1, 0)


async def test_encrypted_attributes_are_tested_for_empty_only(p: Assembly) -> None:
    await _message(p, "m-1", BODY)
    await _message(p, "m-2", "")
    with pytest.raises(ValidationError, match="encrypted"):
        await p.datasets.query(
            "MESSAGES", Query(filters=(Filter(field="message", op=FilterOp.EQ, value=BODY),))
        )
    empty = await p.datasets.query(
        "MESSAGES", Query(filters=(Filter(field="message", op=FilterOp.EMPTY, value=None),))
    )
    assert [r.values["uuid"] for r in empty.records] == ["m-2"]
    full = await p.datasets.query(
        "MESSAGES", Query(filters=(Filter(field="message", op=FilterOp.NOT_EMPTY, value=None),))
    )
    assert [r.values["message"] for r in full.records] == [BODY]


async def test_sqlite_overwrites_deleted_content(p: Assembly) -> None:
    if p.db.dialect != "sqlite":
        pytest.skip("a SQLite pragma")
    async with p.db.read("pragma") as conn:
        assert (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
    async with p.db.transaction("pragma") as txn:
        assert (await txn.conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
