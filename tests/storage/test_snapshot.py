"""Database copies for backups: SQLite online while written, pg_dump/pg_restore, their errors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from carewire.storage import Database, migrate, snapshot
from tests.templates import prefill


def _writer(path: Path, stop: threading.Event, written: list[int]) -> None:
    con = sqlite3.connect(path, timeout=10)
    try:
        n = 0
        while not stop.is_set():
            n += 1
            con.execute("INSERT INTO t (n, pad) VALUES (?, ?)", (n, b"x" * 4000))
            con.commit()
            written.append(n)
    finally:
        con.close()


def test_sqlite_copy_is_consistent_while_another_process_writes(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    con = sqlite3.connect(source)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)")
    con.executemany("INSERT INTO t VALUES (?, ?)", ((i, b"y" * 4000) for i in range(-3000, 0)))
    con.commit()
    con.close()
    stop, written = threading.Event(), list[int]()
    thread = threading.Thread(target=_writer, args=(source, stop, written))
    thread.start()
    reports: list[tuple[int, int]] = []
    try:
        while len(written) < 5:  # the writer is going
            threading.Event().wait(0.01)
        snapshot.copy_sqlite(source, tmp_path / "copy.db", lambda d, t: reports.append((d, t)))
    finally:
        stop.set()
        thread.join()
    copy = sqlite3.connect(tmp_path / "copy.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        rows = [r[0] for r in copy.execute("SELECT n FROM t WHERE n > 0 ORDER BY n")]
        assert copy.execute("SELECT count(*) FROM t WHERE n < 0").fetchone() == (3000,)
    finally:
        copy.close()
    assert rows == list(range(1, len(rows) + 1))  # a prefix of the writes: one state in time
    assert reports and reports[-1][0] == reports[-1][1]  # progress ends at the total


def test_sqlite_copy_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(snapshot.SnapshotError, match="database file not found"):
        snapshot.copy_sqlite(tmp_path / "none.db", tmp_path / "c.db", lambda *_: None)
    with pytest.raises(snapshot.SnapshotError, match="in-memory"):
        snapshot.sqlite_path("sqlite:///:memory:")


def test_missing_and_too_old_client_programs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(snapshot.SnapshotError, match="pg_dump not found on PATH: install"):
        snapshot.pg_tool("pg_dump")
    # A stand-in that answers --version as an old client would.
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o700)
    assert snapshot.tool_major(snapshot.pg_tool("pg_dump")) == 9


async def test_is_empty(db_url: str) -> None:
    assert await snapshot.is_empty(db_url)
    await migrate.upgrade(await prefill(db_url))
    assert not await snapshot.is_empty(db_url)


@pytest.mark.postgres
async def test_pg_dump_and_restore_round_trip(db_url: str, tmp_path: Path) -> None:
    if snapshot.kind(db_url) != "postgresql":
        pytest.skip("PostgreSQL only")
    await migrate.upgrade(await prefill(db_url))
    db = await Database.open(db_url)
    try:
        async with db.transaction("seed") as txn:
            await txn.conn.execute(
                text("INSERT INTO accounts (login, created_at) VALUES ('dumped', now())")
            )
    finally:
        await db.close()
    tool = snapshot.pg_tool("pg_dump")
    assert await snapshot.check_tool(tool, db_url) >= await snapshot.server_major(db_url)
    dump = tmp_path / "x.dump"
    sizes: list[int] = []
    await asyncio.to_thread(
        snapshot.dump_postgres, tool, db_url, dump, lambda d, _t: sizes.append(d)
    )
    assert dump.read_bytes()[:5] == b"PGDMP" and sizes[-1] == dump.stat().st_size

    # Into the same (now non-empty) database: pg_restore fails, in one transaction.
    with pytest.raises(snapshot.SnapshotError, match=r"pg_restore failed: .*already exists"):
        snapshot.restore_postgres(snapshot.pg_tool("pg_restore"), dump, db_url)
    bad = db_url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(snapshot.SnapshotError, match=r"pg_dump failed: .*no_such_database_here"):
        await asyncio.to_thread(snapshot.dump_postgres, tool, bad, tmp_path / "y", lambda *_: None)
