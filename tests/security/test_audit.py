"""The audit trail: the chain verifies, tampering is found, exports are written and audited.

Runs on SQLite and PostgreSQL; tampering is done with raw SQL on the table,
as someone with database access would.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import insert, text

from carewire.assembly_services import login_sink
from carewire.clock import FakeClock
from carewire.core.auth import LoginAuditor
from carewire.core.stores import LoginAttempt, LoginOutcome, Stores
from carewire.security.audit import (
    EXPORT_COLUMNS,
    GENESIS,
    REDACTED,
    AuditEntry,
    AuditEvent,
    AuditTrail,
    Channel,
    ExportFormat,
    Outcome,
    check_chain,
    entry_hash,
)
from carewire.security.audit_verify import verify_trail
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.tables import audit_log
from tests.templates import prefill

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trail:
    """A trail on a fresh database, its database and its clock."""

    db: Database
    trail: AuditTrail
    clock: FakeClock


@pytest.fixture
async def t(db_url: str) -> AsyncIterator[Trail]:
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    clock = FakeClock(START)
    try:
        yield Trail(db=db, trail=AuditTrail(SqlAuditStore(db), clock), clock=clock)
    finally:
        await db.close()


def event(n: int, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "actor": f"api:gateway-{n % 3}",
        "channel": Channel.API,
        "action": "rule.update" if n % 2 else "record.create",
        "target": f"CALLS/{n}",
        "remote_ip": "10.0.0.7",
        "details": {"n": n, "before": {"active": True}, "after": {"active": False}},
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


async def fill(t: Trail, count: int = 50, step: float = 3600) -> list[AuditEntry]:
    entries = []
    for n in range(1, count + 1):
        entries.append(await t.trail.record(event(n)))
        t.clock.advance(step)
    return entries


async def sql(t: Trail, *statements: str) -> None:
    async with t.db.transaction("tamper") as txn:
        for statement in statements:
            await txn.conn.execute(text(statement))


# -- the pure chain check ---------------------------------------------------------


def test_check_chain_without_a_database() -> None:
    h1 = entry_hash(GENESIS, START, event(1))
    e1 = AuditEntry(id=1, at=START, event=event(1), prev_hash=GENESIS, hash=h1)
    h2 = entry_hash(h1, START, event(2))
    e2 = AuditEntry(id=2, at=START, event=event(2), prev_hash=h1, hash=h2)
    assert check_chain([e1, e2], GENESIS) is None
    assert check_chain([e2], h1) is None
    unlinked = check_chain([e2], GENESIS)
    assert unlinked is not None and unlinked[0] == 0 and "removed" in unlinked[1]
    edited = check_chain([e1, replace(e2, event=event(3))], GENESIS)
    assert edited is not None and edited[0] == 1 and "edited" in edited[1]


# -- a real chain -------------------------------------------------------------------


async def test_fifty_entries_verify(t: Trail) -> None:
    entries = await fill(t)
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    result = await verify_trail(t.trail)
    assert result.ok and result.checked == 50 and result.first_bad_id is None, result
    # Small batches walk the same chain across page boundaries.
    assert (await verify_trail(t.trail, batch=7)).checked == 50


async def test_empty_trail_verifies(t: Trail) -> None:
    result = await verify_trail(t.trail)
    assert result.ok and result.checked == 0


async def test_edited_field_is_found(t: Trail) -> None:
    entries = await fill(t)
    await sql(t, f"UPDATE audit_log SET target = 'CALLS/999' WHERE id = {entries[24].id}")
    result = await verify_trail(t.trail, batch=10)
    assert not result.ok and result.first_bad_id == entries[24].id, result
    assert "edited" in result.reason and result.checked == 25


async def test_edited_details_are_found(t: Trail) -> None:
    entries = await fill(t, 5)
    await sql(t, f"UPDATE audit_log SET details = '{{}}' WHERE id = {entries[2].id}")
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[2].id


async def test_deleted_row_is_found(t: Trail) -> None:
    entries = await fill(t)
    await sql(t, f"DELETE FROM audit_log WHERE id = {entries[20].id}")
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[21].id, result
    assert "removed" in result.reason


async def test_deleted_first_row_is_found(t: Trail) -> None:
    entries = await fill(t, 5)
    await sql(t, f"DELETE FROM audit_log WHERE id = {entries[0].id}")
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[1].id


async def test_reordered_pair_is_found(t: Trail) -> None:
    entries = await fill(t)
    a, b = entries[10].id, entries[11].id
    await sql(
        t,
        f"UPDATE audit_log SET id = -1 WHERE id = {a}",
        f"UPDATE audit_log SET id = {a} WHERE id = {b}",
        f"UPDATE audit_log SET id = {b} WHERE id = -1",
    )
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == a, result


async def test_forged_row_is_found(t: Trail) -> None:
    entries = await fill(t)
    forged = event(99, actor="cli:mallory")
    wrong_prev = "f" * 64
    async with t.db.transaction("forge") as txn:
        await txn.conn.execute(
            insert(audit_log).values(
                at=t.clock.now(),
                actor=forged.actor,
                channel=forged.channel.value,
                action=forged.action,
                target=forged.target,
                outcome=forged.outcome.value,
                remote_ip=forged.remote_ip,
                details=json.dumps(dict(forged.details), sort_keys=True),
                prev_hash=wrong_prev,
                hash=entry_hash(wrong_prev, t.clock.now(), forged),
            )
        )
    result = await verify_trail(t.trail)
    assert not result.ok and result.first_bad_id == entries[-1].id + 1, result
    assert result.checked == 51


async def test_stored_form_keeps_the_hash(t: Trail) -> None:
    """Long text, tuples, odd values and secret keys are stored as hashed: the chain holds."""
    await t.trail.record(
        AuditEvent(
            actor="api:" + "x" * 500,
            channel=Channel.API,
            action="adapter.update",
            target="t" * 1000,
            details={
                "before": {"settings": {"password": "hunter2", "hosts": ("a", "b")}},
                "at": START,
                "token": "cw_secret",
            },
        )
    )
    assert (await verify_trail(t.trail)).ok
    [entry], total = await t.trail.store.entries()
    assert total == 1 and len(entry.event.actor) == 200 and len(entry.event.target) == 300
    assert entry.event.details["token"] == REDACTED
    before = entry.event.details["before"]
    assert before == {"settings": {"password": REDACTED, "hosts": ["a", "b"]}}
    async with t.db.read("raw") as conn:
        raw = (await conn.execute(text("SELECT details FROM audit_log"))).scalar_one()
    assert "hunter2" not in raw and "cw_secret" not in raw


async def test_non_utc_time_is_stored_as_utc(t: Trail) -> None:
    from zoneinfo import ZoneInfo

    local = START.astimezone(ZoneInfo("Europe/Berlin"))
    await t.trail.record_many([(local, event(1)), (local + timedelta(seconds=1), event(2))])
    assert (await verify_trail(t.trail)).ok
    entries, _ = await t.trail.store.entries()
    assert [e.at for e in entries] == [START + timedelta(seconds=1), START]


# -- exports ----------------------------------------------------------------------


async def test_csv_export_of_a_period(t: Trail) -> None:
    entries = await fill(t, 10)  # one per hour from 08:00
    out = io.StringIO()
    since, until = START + timedelta(hours=2), START + timedelta(hours=5)
    count = await t.trail.export(
        since, until, ExportFormat.CSV, out, actor="cli:root", channel=Channel.CLI
    )
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 3 and len(rows) == 3
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [int(r["id"]) for r in rows] == [e.id for e in entries[2:5]]
    first = rows[0]
    assert first["actor"] == entries[2].event.actor and first["target"] == "CALLS/3"
    assert first["channel"] == "api" and first["outcome"] == "success"
    assert first["remote_ip"] == "10.0.0.7" and first["hash"] == entries[2].hash
    assert json.loads(first["details"])["n"] == 3
    assert datetime.fromisoformat(first["at"]) == since


async def test_csv_export_neutralises_formulas(t: Trail) -> None:
    await t.trail.record(
        AuditEvent(
            actor="=cmd|' /C calc'!A0",
            channel=Channel.CONSOLE,
            action="login",
            target="@SUM(1+1)",
            outcome=Outcome.FAILURE,
            remote_ip="10.0.0.7",
        )
    )
    out = io.StringIO()
    until = START + timedelta(days=1)
    await t.trail.export(
        START - timedelta(days=1), until, ExportFormat.CSV, out, actor="cli", channel=Channel.CLI
    )
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["actor"] == "'=cmd|' /C calc'!A0" and row["target"] == "'@SUM(1+1)"
    assert row["action"] == "login" and row["remote_ip"] == "10.0.0.7"


async def test_json_export_and_export_is_audited(t: Trail) -> None:
    await fill(t, 4)
    out = io.StringIO()
    count = await t.trail.export(
        START,
        START + timedelta(days=1),
        ExportFormat.JSON,
        out,
        actor="api:auditor",
        channel=Channel.API,
        remote_ip="10.1.1.1",
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == 4 and [x["target"] for x in lines] == [f"CALLS/{n}" for n in range(1, 5)]
    assert lines[1]["details"]["after"] == {"active": False}
    assert set(lines[0]) == set(EXPORT_COLUMNS)
    [last], total = await t.trail.store.entries(limit=1)
    assert total == 5
    assert last.event.action == "audit.export" and last.event.actor == "api:auditor"
    assert last.event.details == {"format": "json", "entries": 4}
    assert last.event.remote_ip == "10.1.1.1"
    assert (await verify_trail(t.trail)).ok


async def test_empty_export_still_audited(t: Trail) -> None:
    out = io.StringIO()
    count = await t.trail.export(
        START, START + timedelta(days=1), ExportFormat.CSV, out, actor="cli", channel=Channel.CLI
    )
    assert count == 0 and out.getvalue().strip() == ",".join(EXPORT_COLUMNS)
    entries, _ = await t.trail.store.entries(action="audit.export", outcome=Outcome.SUCCESS)
    assert len(entries) == 1


# -- XMPP logins feed the trail through the login auditor's sink ---------------------


class _FakeLoginAudit:
    def __init__(self) -> None:
        self.rows: list[LoginAttempt] = []

    async def append_many(self, attempts: Sequence[LoginAttempt]) -> None:
        self.rows += attempts


def _attempt(login: str, outcome: LoginOutcome, reason: str = "") -> LoginAttempt:
    return LoginAttempt(
        at=START,
        login=login,
        remote_ip="192.0.2.1",
        transport="c2s",
        mechanism="PLAIN",
        outcome=outcome,
        reason=reason,
    )


async def test_login_sink_records_every_attempt(t: Trail) -> None:
    login_audit = _FakeLoginAudit()
    stores = cast(Stores, SimpleNamespace(login_audit=login_audit))
    auditor = LoginAuditor(stores, sink=login_sink(t.trail))
    auditor.record(_attempt("joy", LoginOutcome.FAILURE, "not-authorized"))
    auditor.record(_attempt("joy", LoginOutcome.LOCKED))
    auditor.record(_attempt("joy", LoginOutcome.SUCCESS))
    await auditor.flush()
    entries, _ = await t.trail.store.entries()
    got = [(e.event.actor, e.event.action, e.event.outcome) for e in reversed(entries)]
    assert got == [
        ("xmpp:joy", "login", Outcome.FAILURE),
        ("xmpp:joy", "login", Outcome.FAILURE),
        ("xmpp:joy", "login", Outcome.SUCCESS),
    ]
    first = entries[-1]
    assert first.at == START and first.event.channel is Channel.XMPP
    assert first.event.remote_ip == "192.0.2.1" and first.event.target == "joy"
    assert first.event.details == {
        "mechanism": "PLAIN",
        "transport": "c2s",
        "result": "failure",
        "reason": "not-authorized",
    }
    assert entries[1].event.details["result"] == "locked"
    assert (await verify_trail(t.trail)).ok


async def test_failing_sink_retries_without_duplicating_the_login_audit() -> None:
    login_audit = _FakeLoginAudit()
    calls: list[int] = []

    async def flaky(attempts: Sequence[LoginAttempt]) -> None:
        calls.append(len(attempts))
        if len(calls) == 1:
            raise RuntimeError("trail unavailable")

    auditor = LoginAuditor(cast(Stores, SimpleNamespace(login_audit=login_audit)), sink=flaky)
    auditor.record(_attempt("joy", LoginOutcome.SUCCESS))
    with pytest.raises(RuntimeError):
        await auditor.flush()
    auditor.record(_attempt("ann", LoginOutcome.SUCCESS))
    await auditor.flush()
    assert [a.login for a in login_audit.rows] == ["joy", "ann"]
    assert calls == [1, 2]
