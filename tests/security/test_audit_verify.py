"""Authenticated audit entries: what someone who can write the database cannot get past verify.

Every attack is made with raw SQL, as a database writer without the audit key
would: each one recomputes whatever plain SHA-256 lets it recompute. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update

from carewire.clock import FakeClock
from carewire.security.audit import (
    GENESIS,
    AuditEntry,
    AuditEvent,
    AuditTrail,
    Channel,
    MacEpoch,
    entry_hash,
    epoch_input,
    storable,
)
from carewire.security.audit_key import AuditKey
from carewire.security.audit_verify import ChainChecker, verify_trail
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.tables import audit_log
from tests.templates import prefill

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
_A = audit_log.c


@dataclass(frozen=True, slots=True, kw_only=True)
class Trail:
    db: Database
    trail: AuditTrail
    key: AuditKey
    clock: FakeClock


@pytest.fixture
async def t(db_url: str) -> AsyncIterator[Trail]:
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    key, clock = AuditKey.generate(), FakeClock(START)
    try:
        yield Trail(db=db, trail=AuditTrail(SqlAuditStore(db, key), clock), key=key, clock=clock)
    finally:
        await db.close()


def event(n: int, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "actor": f"console:admin{n % 2}",
        "channel": Channel.CONSOLE,
        "action": "rule.update",
        "target": f"rule-{n}",
        "remote_ip": "10.0.0.7",
        "details": {"n": n},
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


async def fill(t: Trail, count: int = 20) -> list[AuditEntry]:
    entries = []
    for n in range(1, count + 1):
        entries.append(await t.trail.record(event(n)))
        t.clock.advance(60)
    return entries


async def rows(t: Trail) -> list[AuditEntry]:
    return [e async for e in t.trail.store.iterate()]


async def rechain_from(t: Trail, first_id: int) -> None:
    """Recompute every hash from ``first_id`` on with plain SHA-256, as an attacker can."""
    entries = await rows(t)
    prev = GENESIS
    async with t.db.transaction("rechain") as txn:
        for e in entries:
            if e.id >= first_id:
                digest = entry_hash(prev, e.at, e.event)
                await txn.conn.execute(
                    update(audit_log).where(_A.id == e.id).values(prev_hash=prev, hash=digest)
                )
                prev = digest
            else:
                prev = e.hash


async def sql(t: Trail, *statements: str) -> None:
    async with t.db.transaction("tamper") as txn:
        for statement in statements:
            await txn.conn.execute(text(statement))


async def test_entries_carry_macs_and_verify(t: Trail) -> None:
    entries = await fill(t)
    assert all(len(e.mac) == 64 for e in entries)
    epochs = await t.trail.store.epochs()
    assert [(e.key_id, e.after_id, e.after_hash) for e in epochs] == [(t.key.key_id, 0, GENESIS)]
    result = await verify_trail(t.trail, batch=7)
    assert result.ok and result.checked == 20 and result.authenticated == 20, result
    assert result.notes == ()


async def test_rechained_edit_is_found(t: Trail) -> None:
    """Edit a row and recompute every later hash: plain SHA-256 used to say 'intact'."""
    entries = await fill(t)
    await sql(t, f"UPDATE audit_log SET target = 'rule-x' WHERE id = {entries[9].id}")
    await rechain_from(t, entries[9].id)
    result = await verify_trail(t.trail, batch=4)
    assert not result.ok and result.first_bad_id == entries[9].id, result
    assert "MAC does not match" in result.reason and result.checked == 10


async def test_rechained_deletion_is_found(t: Trail) -> None:
    entries = await fill(t)
    await sql(t, f"DELETE FROM audit_log WHERE id = {entries[5].id}")
    await rechain_from(t, entries[6].id)
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[6].id
    assert "MAC does not match" in result.reason


async def test_inserted_entry_is_found(t: Trail) -> None:
    """An entry slipped in at the end, chained correctly, with a made-up MAC."""
    entries = await fill(t, 5)
    at, forged = storable(START, event(99, actor="console:mallory"))
    digest = entry_hash(entries[-1].hash, at, forged)
    await sql(
        t,
        "INSERT INTO audit_log (at, actor, channel, action, target, outcome, remote_ip, details,"
        f" prev_hash, hash, mac) VALUES ('{at.isoformat()}', 'console:mallory', 'console',"
        f" 'rule.update', 'rule-99', 'success', '10.0.0.7', '{json.dumps(forged.details)}',"
        f" '{entries[-1].hash}', '{digest}', '{'0' * 64}')",
    )
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[-1].id + 1, result
    assert "MAC does not match" in result.reason


async def test_reordered_entries_are_found(t: Trail) -> None:
    entries = await fill(t, 6)
    a, b = entries[2].id, entries[3].id
    await sql(
        t,
        f"UPDATE audit_log SET id = -1 WHERE id = {a}",
        f"UPDATE audit_log SET id = {a} WHERE id = {b}",
        f"UPDATE audit_log SET id = {b} WHERE id = -1",
    )
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == a and "removed, reordered" in result.reason


async def test_stripped_mac_is_found(t: Trail) -> None:
    entries = await fill(t, 5)
    await sql(t, f"UPDATE audit_log SET mac = NULL WHERE id = {entries[3].id}")
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[3].id
    assert "carries no MAC" in result.reason


async def test_removed_markers_are_found(t: Trail) -> None:
    """Without the markers nothing would say MACs were in force: that itself is a finding."""
    await fill(t, 5)
    await sql(t, "DELETE FROM audit_mac_epochs", "UPDATE audit_log SET mac = NULL")
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id is None
    assert "no entry is authenticated" in result.reason and t.key.key_id in result.reason


async def test_moved_marker_is_found(t: Trail) -> None:
    """Moving where MACs begin (to pass rewritten entries off as older ones) breaks its MAC."""
    await fill(t, 5)
    await sql(t, "UPDATE audit_mac_epochs SET after_id = 3")
    result = await verify_trail(t.trail)
    assert not result.ok and "forged or edited" in result.reason


async def test_a_marker_for_an_unknown_key_is_found(t: Trail) -> None:
    """A marker claiming later entries for a key the installation does not hold."""
    entries = await fill(t, 5)
    other = AuditKey.generate()
    mac = other.mac(epoch_input(other.key_id, entries[2].id, entries[2].hash, START))
    await sql(
        t,
        "INSERT INTO audit_mac_epochs (key_id, after_id, after_hash, at, mac) VALUES "
        f"('{other.key_id}', {entries[2].id}, '{entries[2].hash}', '{START.isoformat()}', '{mac}')",
    )
    result = await verify_trail(t.trail)
    assert not result.ok and "does not hold" in result.reason and other.key_id in result.reason


async def test_another_key_cannot_verify(t: Trail) -> None:
    await fill(t, 3)
    stranger = AuditTrail(SqlAuditStore(t.db, AuditKey.generate()), t.clock)
    result = await verify_trail(stranger)
    assert not result.ok and "no entry is authenticated" in result.reason


async def test_truncation_before_the_marker_is_found(t: Trail) -> None:
    """Entries removed from the end, back past where MACs began."""
    legacy = [await insert_legacy(t, n) for n in range(1, 4)]
    await fill(t, 2)
    await sql(t, f"DELETE FROM audit_log WHERE id > {legacy[1]}")
    result = await verify_trail(t.trail)
    assert not result.ok and "removed from the end" in result.reason


# -- an installation from before MACs -------------------------------------------------


async def insert_legacy(t: Trail, n: int) -> int:
    """An entry as written before MACs existed: hash-chained, no MAC."""
    async with t.db.transaction("legacy") as txn:
        last = (
            await txn.conn.execute(select(_A.hash).order_by(_A.id.desc()).limit(1))
        ).scalar_one_or_none() or GENESIS
        at, ev = storable(t.clock.now(), event(n))
        result = await txn.conn.execute(
            audit_log.insert().values(
                at=at,
                actor=ev.actor,
                channel=ev.channel.value,
                action=ev.action,
                target=ev.target,
                outcome=ev.outcome.value,
                remote_ip=ev.remote_ip,
                details=json.dumps(ev.details, sort_keys=True),
                prev_hash=last,
                hash=entry_hash(last, at, ev),
            )
        )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def test_upgraded_trail_verifies_and_anchors_the_old_chain(t: Trail) -> None:
    legacy = [await insert_legacy(t, n) for n in range(1, 11)]
    await t.trail.ensure_epoch()
    await fill(t, 5)
    [epoch] = await t.trail.store.epochs()
    assert epoch.after_id == legacy[-1] and epoch.key_id == t.key.key_id
    first_new = (await rows(t))[10]
    assert first_new.event.action == "audit.key" and first_new.event.target == t.key.key_id
    result = await verify_trail(t.trail, batch=4)
    assert result.ok and result.checked == 16 and result.authenticated == 6, result
    assert result.notes and "10 entries before entry" in result.notes[0]
    await t.trail.ensure_epoch()  # the same key: no second marker, no entry
    assert len(await t.trail.store.epochs()) == 1 and len(await rows(t)) == 16


async def test_rewritten_old_chain_breaks_the_anchor(t: Trail) -> None:
    """The pre-MAC entries can be re-chained by hash, but not to the hash the marker holds."""
    legacy = [await insert_legacy(t, n) for n in range(1, 11)]
    entries = await fill(t, 3)
    await sql(t, f"UPDATE audit_log SET target = 'rule-x' WHERE id = {legacy[4]}")
    await rechain_from(t, legacy[4])
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[0].id, result
    # Re-chaining stopped at the marker is the anchor; re-chaining on through it, a MAC.
    assert "recorded when MACs began" in result.reason or "MAC does not match" in result.reason


async def test_rewritten_old_chain_up_to_the_marker_breaks_the_anchor(t: Trail) -> None:
    legacy = [await insert_legacy(t, n) for n in range(1, 11)]
    entries = await fill(t, 3)
    await sql(t, f"UPDATE audit_log SET target = 'rule-x' WHERE id = {legacy[4]}")
    old = await rows(t)
    prev = old[3].hash
    async with t.db.transaction("rechain-legacy") as txn:
        for e in old[4:10]:
            digest = entry_hash(prev, e.at, e.event)
            await txn.conn.execute(
                update(audit_log).where(_A.id == e.id).values(prev_hash=prev, hash=digest)
            )
            prev = digest
        first = entries[0]  # linked and re-hashed too: only its MAC and the anchor hold
        await txn.conn.execute(
            update(audit_log)
            .where(_A.id == first.id)
            .values(prev_hash=prev, hash=entry_hash(prev, first.at, first.event))
        )
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[0].id
    assert "recorded when MACs began" in result.reason


async def test_a_replaced_key_keeps_the_old_entries_verifiable(t: Trail) -> None:
    """The key was lost: a new one takes over; the old epoch is checked by hash, anchored."""
    await fill(t, 4)
    new_key = AuditKey.generate()
    new = AuditTrail(SqlAuditStore(t.db, new_key), t.clock)
    await new.ensure_epoch()
    await new.record(event(50))
    result = await verify_trail(new)
    assert result.ok and result.checked == 6 and result.authenticated == 2, result
    assert result.notes and "4 entries" in result.notes[0]
    # The old key still verifies its own epoch, but not the new key's entries.
    old = await verify_trail(t.trail)
    assert not old.ok and "does not hold" in old.reason


def test_checker_without_a_database() -> None:
    key = AuditKey.generate()
    epoch_mac = key.mac(epoch_input(key.key_id, 0, GENESIS, START))
    epoch = MacEpoch(
        id=1, key_id=key.key_id, after_id=0, after_hash=GENESIS, at=START, mac=epoch_mac
    )
    at, ev = storable(START, event(1))
    digest = entry_hash(GENESIS, at, ev)
    from carewire.security.audit import mac_input

    good = AuditEntry(
        id=1, at=at, event=ev, prev_hash=GENESIS, hash=digest, mac=key.mac(mac_input(digest))
    )
    checker = ChainChecker(key, [epoch])
    assert checker.problem == "" and checker.feed([good]) is None and checker.finish() == ""
    bad = ChainChecker(key, [epoch])
    found = bad.feed([AuditEntry(id=1, at=at, event=ev, prev_hash=GENESIS, hash=digest, mac="ab")])
    assert found is not None and found[0] == 0 and "MAC does not match" in found[1]
