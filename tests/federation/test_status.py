"""The status board (federation/status.py): reports coalesced per stream, written behind in
one batch, kept when a write fails, written on close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from carewire.clock import FakeClock
from carewire.core.federation import DomainStatus
from carewire.federation.model import ReportedStatus
from carewire.federation.status import StatusBoard
from carewire.storage import Database, migrate
from carewire.storage.federation import SqlStatusStore
from tests.security.pki import NOW
from tests.templates import prefill


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    await migrate.upgrade(url)
    opened = await Database.open(url)
    try:
        yield opened
    finally:
        await opened.close()


class CountingStore(SqlStatusStore):
    """The real store, counting its writes and failing them on demand."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.writes: list[int] = []
        self.fail = False

    async def write(self, statuses: Sequence[DomainStatus], at: datetime) -> None:
        if self.fail:
            raise OSError("the database went away")
        self.writes.append(len(statuses))
        await super().write(statuses, at)


async def test_reports_are_coalesced_and_written_in_one_batch(db: Database) -> None:
    store = CountingStore(db)
    board = StatusBoard(store, FakeClock(NOW), node="n1")
    for queued in range(50):
        board.update(
            DomainStatus(domain="B.example", direction="out", connected=False, queued=queued)
        )
    board.update(DomainStatus(domain="c.example", direction="in", connected=True, node="n2"))
    assert board.pending == 2 and store.writes == []
    rows = await board.read()
    assert store.writes == [2] and board.pending == 0
    assert [(r.status.domain, r.status.node, r.status.queued) for r in rows] == [
        ("B.example", "n1", 49),
        ("c.example", "n2", 0),
    ]
    assert all(isinstance(r, ReportedStatus) and r.updated_at == NOW for r in rows)
    await board.flush()  # nothing pending: no write
    assert store.writes == [2]


async def test_a_failed_write_keeps_the_reports(db: Database) -> None:
    store = CountingStore(db)
    board = StatusBoard(store, FakeClock(NOW), node="n1")
    board.update(DomainStatus(domain="b.example", direction="out", connected=False, queued=1))
    store.fail = True
    with pytest.raises(OSError):
        await board.flush()
    board.update(DomainStatus(domain="b.example", direction="out", connected=True, queued=2))
    board.update(DomainStatus(domain="c.example", direction="out", connected=True))
    store.fail = False
    await board.flush()
    assert [(r.status.domain, r.status.queued) for r in await store.read()] == [
        ("b.example", 2),
        ("c.example", 0),
    ]


async def test_the_writer_writes_behind_and_on_close(db: Database) -> None:
    store = CountingStore(db)
    board = StatusBoard(store, FakeClock(NOW), node="n1", flush_interval=0.01)
    await board.start()
    board.update(DomainStatus(domain="b.example", direction="out", connected=True))
    for _ in range(200):
        if store.writes:
            break
        await asyncio.sleep(0.01)
    assert store.writes == [1]
    board.update(DomainStatus(domain="b.example", direction="in", connected=True))
    await board.close()
    # A write cut short by close is written again (rows are upserted): both are there.
    assert [r.status.direction for r in await store.read()] == ["in", "out"]
