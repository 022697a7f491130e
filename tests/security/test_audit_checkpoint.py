"""Signed checkpoints: written outside the database, and compared with the trail.

Runs on SQLite and PostgreSQL; the trail is tampered with by raw SQL.
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from carewire.clock import FakeClock
from carewire.security import audit_checkpoint as checkpoints
from carewire.security.audit import GENESIS, AuditEvent, AuditTrail, Channel
from carewire.security.audit_key import AuditKey
from carewire.security.audit_verify import verify_trail
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from tests.templates import prefill

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trail:
    db: Database
    trail: AuditTrail
    store: SqlAuditStore
    clock: FakeClock
    where: Path


@pytest.fixture
async def t(db_url: str, tmp_path: Path) -> AsyncIterator[Trail]:
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    clock = FakeClock(START)
    store = SqlAuditStore(db, AuditKey.generate())
    try:
        yield Trail(
            db=db, trail=AuditTrail(store, clock), store=store, clock=clock, where=tmp_path / "cp"
        )
    finally:
        await db.close()


async def fill(t: Trail, count: int) -> None:
    for n in range(count):
        await t.trail.record(AuditEvent(actor="cli", channel=Channel.CLI, action=f"act.{n}"))


async def test_checkpoint_of_an_empty_trail_and_of_a_head(t: Trail) -> None:
    empty = await checkpoints.take(t.store, t.where, t.clock.now(), to_log=False)
    assert (empty.entry_id, empty.hash, empty.entries) == (0, GENESIS, 0)
    await fill(t, 3)
    cp = await checkpoints.take(t.store, t.where, t.clock.now(), to_log=False)
    entry_id, digest, count = await t.store.head()
    assert (cp.entry_id, cp.hash, cp.entries) == (entry_id, digest, count) and count == 3
    file = t.where / checkpoints.FILE_NAME
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(t.where.stat().st_mode) == 0o700
    assert [c for _, c in checkpoints.read_lines(t.where)] == [empty, cp]
    report = await checkpoints.check(t.store, t.where)
    assert report.checked == 2 and report.problems == [] and report.notes == []


async def test_truncated_tail_is_found(t: Trail) -> None:
    await fill(t, 5)
    await checkpoints.take(t.store, t.where, t.clock.now(), to_log=False)
    last, _, _ = await t.store.head()
    async with t.db.transaction("truncate") as txn:
        await txn.conn.execute(text(f"DELETE FROM audit_log WHERE id > {last - 2}"))
    assert (await verify_trail(t.trail)).ok  # the chain alone cannot tell
    report = await checkpoints.check(t.store, t.where)
    assert len(report.problems) == 1 and "removed from the end" in report.problems[0]
    assert f"up to {last}" in report.problems[0]


async def test_rewritten_entry_at_a_checkpoint_is_found(t: Trail) -> None:
    await fill(t, 3)
    cp = await checkpoints.take(t.store, t.where, t.clock.now(), to_log=False)
    async with t.db.transaction("rewrite") as txn:
        await txn.conn.execute(
            text(f"UPDATE audit_log SET hash = '{'e' * 64}' WHERE id = {cp.entry_id}")
        )
    report = await checkpoints.check(t.store, t.where)
    assert report.problems == [
        f"entry {cp.entry_id} differs from the checkpoint of {cp.at.isoformat()} (rewritten)"
    ]


async def test_forged_lines_and_foreign_keys(t: Trail) -> None:
    await fill(t, 2)
    cp = await checkpoints.take(t.store, t.where, t.clock.now(), to_log=False)
    other = checkpoints.signed(
        AuditKey.generate(), entry_id=99, hash="a" * 64, entries=99, at=START
    )
    forged = json.loads(cp.to_line())
    forged["entry_id"] = 1  # point at an older entry: the signature no longer covers it
    file = t.where / checkpoints.FILE_NAME
    with file.open("a") as f:
        f.write(other.to_line() + "\n" + json.dumps(forged) + "\n{}\n")
    report = await checkpoints.check(t.store, t.where)
    assert report.checked == 1
    assert report.problems == [
        "checkpoint line 3: the signature does not verify (forged or altered)",
        "checkpoint line 4 is not a checkpoint (altered)",
    ]
    assert report.notes == [
        f"checkpoint line 2 is signed by key {other.key_id}, not held: not checked"
    ]


async def test_checkpointer_signs_only_when_the_head_moved(
    t: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    cpr = checkpoints.Checkpointer(t.store, t.where, t.clock, to_log=True)
    with caplog.at_level("INFO", logger="carewire.security.audit_checkpoint"):
        assert await cpr.tick(force=True) is not None
    assert "audit checkpoint {" in caplog.text
    assert await cpr.tick() is None
    await fill(t, 1)
    t.clock.advance(900)
    moved = await cpr.tick()
    assert moved is not None and moved.entries == 1 and moved.at == t.clock.now()
    assert len(checkpoints.read_lines(t.where)) == 2


async def test_no_file_is_no_checkpoint(t: Trail) -> None:
    report = await checkpoints.check(t.store, t.where)
    assert (report.checked, report.problems, report.notes) == (0, [], [])
