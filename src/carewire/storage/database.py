"""The database handle: engines, named transactions and reads.

Every write goes through ``async with db.transaction("name") as txn:``;
the name shows up in debug logs with the duration. On SQLite all writers
share one connection and an :class:`asyncio.Lock` serialises them, so they
never meet "database is locked"; reads use a small separate pool (WAL lets
them run while a write is in progress). On PostgreSQL writes and reads use
two pools, the read pool in autocommit mode.

Transactions nest by joining: a ``db.transaction(...)`` opened while the
same task already holds one of the same database runs its statements in the
outer one, which commits (or rolls back) them all together, and its
after-commit callbacks wait for that commit. So a service can make several
stores' writes one transaction without passing connections around
(registering a user writes the account, the directory profile and the USERS
record at once). A task started inside a transaction never joins it: each
task opens its own. A read inside a transaction on an in-memory database
(one connection) still deadlocks.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import NoReturn, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carewire.core.stats import DB_BUCKETS, LatencyBuckets
from carewire.storage import dialects

log = logging.getLogger(__name__)

T = TypeVar("T")


class Transaction:
    """An open write transaction.

    Attributes:
        name: The transaction's name, for logs.
        conn: The connection to execute statements on.
    """

    __slots__ = ("_callbacks", "conn", "name", "owner")

    def __init__(self, name: str, conn: AsyncConnection) -> None:
        self.name = name
        self.conn = conn
        self.owner = asyncio.current_task()  # only this task may join it
        self._callbacks: list[Callable[[], object]] = []

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` (synchronous, no arguments) once the commit succeeded.

        Callbacks run in registration order; one that raises is logged and
        the others still run. They never run if the transaction rolls back.
        """
        self._callbacks.append(callback)

    def _run_callbacks(self) -> None:
        # Taken out, not kept: a callback often closes over what holds this transaction
        # (a dataset batch and its events), and that cycle would wait for the collector.
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback of transaction %s failed", self.name)


#: The transaction the current task holds, per database (by ``id``).
_open: contextvars.ContextVar[dict[int, Transaction]] = contextvars.ContextVar("carewire_txn")
_NONE: dict[int, Transaction] = {}


class _NoLock:
    """A stand-in for :class:`asyncio.Lock` where no serialisation is needed."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class Database:
    """An open SQLite or PostgreSQL database.

    Create with :meth:`open`, release with :meth:`close`. Does not migrate:
    call :func:`carewire.storage.migrate.upgrade` first.

    Attributes:
        dialect: ``"sqlite"`` or ``"postgresql"``.
    """

    def __init__(
        self,
        dialect: str,
        writer: AsyncEngine,
        reader: AsyncEngine | None,
        point_reader: Engine | None = None,
    ) -> None:
        """Wrap engines; use :meth:`open` instead.

        Args:
            dialect: ``"sqlite"`` or ``"postgresql"``.
            writer: Engine for transactions.
            reader: Engine for reads, or None to read through the writer
                (then under the write lock on SQLite).
            point_reader: Synchronous engine for inline point lookups (file SQLite).
        """
        self.dialect = dialect
        self._writer = writer
        self._reader = reader
        self._lock: asyncio.Lock | _NoLock = (
            asyncio.Lock() if dialect == dialects.SQLITE else _NoLock()
        )
        self._read_lock: asyncio.Lock | _NoLock = self._lock if reader is None else _NoLock()
        self._read_engine = reader if reader is not None else writer
        self._point_reader = point_reader
        # Durations by kind (transaction, read, point_read), read by /metrics when scraped.
        self.latency = {
            kind: LatencyBuckets(DB_BUCKETS) for kind in ("transaction", "read", "point_read")
        }

    @classmethod
    async def open(cls, url: str) -> Database:
        """Connect to the database named by ``url``.

        Args:
            url: ``sqlite:///path``, ``sqlite+aiosqlite:///path``,
                ``postgresql://…`` or ``postgres://…``.

        Returns:
            The open database (its connection was tried once).

        Raises:
            ConfigError: The URL is unsupported or SQLite is too old.
        """
        parsed = dialects.normalize_url(url)
        dialect = dialects.dialect_of(parsed)
        writer = dialects.create_engine(parsed, dialects.Role.WRITER)
        reader: AsyncEngine | None = None
        if dialect == dialects.POSTGRESQL or not dialects.is_memory(parsed):
            reader = dialects.create_engine(parsed, dialects.Role.READER)
        db = cls(dialect, writer, reader, dialects.create_point_reader(parsed))
        try:
            async with db.transaction("open") as txn:
                await txn.conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as exc:  # refused, unknown host or database, no access
            await db.close()
            raise dialects.unreachable(url, exc) from None
        except BaseException:
            await db.close()
            raise
        log.info("database opened (%s)", dialect)
        return db

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._writer.dispose()
        if self._reader is not None:
            await self._reader.dispose()
        if self._point_reader is not None:
            self._point_reader.dispose()

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[Transaction]:
        """Run a write transaction named ``name``.

        Commits when the block ends normally, rolls back when it raises;
        after-commit callbacks run only after a successful commit.

        Args:
            name: A short name for logs (``"add_roster_item"``).

        Yields:
            The :class:`Transaction`.

        Raises:
            ValueError: A bound value was rejected (e.g. a naive datetime).
        """
        outer = _open.get(_NONE).get(id(self))
        if outer is not None and outer.owner is asyncio.current_task():
            log.debug("transaction %s joins %s", name, outer.name)
            yield outer
            return
        started = time.perf_counter()
        txn: Transaction | None = None
        try:
            async with self._lock, self._writer.begin() as conn:
                txn = Transaction(name, conn)
                token = _open.set({**_open.get(_NONE), id(self): txn})
                try:
                    yield txn
                finally:
                    _open.reset(token)
        except StatementError as exc:
            log.debug("transaction %s failed after %.3f ms", name, _ms_since(started))
            if txn is not None:
                txn._callbacks.clear()  # never run; dropped so no cycle outlives the rollback
            _reraise(exc)
        except BaseException:
            log.debug("transaction %s rolled back after %.3f ms", name, _ms_since(started))
            if txn is not None:
                txn._callbacks.clear()
            raise
        elapsed = time.perf_counter() - started
        self.latency["transaction"].observe(elapsed)
        log.debug("transaction %s committed in %.3f ms", name, elapsed * 1000.0)
        txn._run_callbacks()

    def in_transaction(self) -> bool:
        """Whether the calling task has a transaction open here (a new one would join it)."""
        outer = _open.get(_NONE).get(id(self))
        return outer is not None and outer.owner is asyncio.current_task()

    @asynccontextmanager
    async def read(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A connection for reading, in autocommit mode.

        Each statement sees the latest committed data; there is no snapshot
        across statements. Do not write through it.

        Args:
            name: A short name for logs.

        Yields:
            The connection.
        """
        started = time.perf_counter()
        try:
            async with self._read_lock, self._read_engine.connect() as conn:
                yield conn
        except StatementError as exc:
            _reraise(exc)
        finally:
            elapsed = time.perf_counter() - started
            self.latency["read"].observe(elapsed)
            log.debug("read %s took %.3f ms", name, elapsed * 1000.0)

    @asynccontextmanager
    async def reading(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that must see the current task's own uncommitted writes.

        Inside a transaction this task holds: that transaction's connection;
        otherwise a read connection as :meth:`read` gives.

        Args:
            name: A short name for logs.

        Yields:
            The connection.
        """
        outer = _open.get(_NONE).get(id(self))
        if outer is not None and outer.owner is asyncio.current_task():
            yield outer.conn
            return
        async with self.read(name) as conn:
            yield conn

    @property
    def has_point_reads(self) -> bool:
        """Whether :meth:`point_read` is available (file-backed SQLite)."""
        return self._point_reader is not None

    @contextmanager
    def point_read(self, name: str) -> Iterator[Connection]:
        """A synchronous connection for one tiny indexed read, in the calling thread.

        Only for primary-key lookups on the hot path: the event loop waits
        for the statement (tens of microseconds on SQLite).

        Args:
            name: A short name for logs.

        Yields:
            The connection.
        """
        assert self._point_reader is not None, "point reads need file-backed SQLite"
        started = time.perf_counter()
        try:
            with self._point_reader.connect() as conn:
                yield conn
        except StatementError as exc:
            _reraise(exc)
        finally:
            elapsed = time.perf_counter() - started
            self.latency["point_read"].observe(elapsed)
            log.debug("point read %s took %.3f ms", name, elapsed * 1000.0)

    async def server_version(self) -> str:
        """The database engine's version (``SQLite 3.45.1``, ``PostgreSQL 16.2``)."""
        if self.dialect == dialects.SQLITE:
            return f"SQLite {sqlite3.sqlite_version}"
        async with self.read("server_version") as conn:
            value = (await conn.execute(text("SHOW server_version"))).scalar()
        return f"PostgreSQL {str(value).split()[0]}"

    async def fetch(self, name: str, query: Callable[[Connection], T]) -> T:
        """Run a small read-only ``query(connection)``: inline on file SQLite, pooled otherwise.

        For the hot path's indexed lookups; one function serves both databases
        (on PostgreSQL it runs through ``AsyncConnection.run_sync``).
        """
        if self._point_reader is not None:
            with self.point_read(name) as conn:
                return query(conn)
        async with self.read(name) as aconn:
            return await aconn.run_sync(query)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _reraise(exc: StatementError) -> NoReturn:
    """Re-raise ``exc``, or the ``ValueError`` a type rejected a bound value with.

    SQLAlchemy wraps errors raised while binding parameters (for example
    :class:`~carewire.storage.tables.UTCDateTime` refusing a naive datetime)
    in a bare :class:`StatementError`; callers should see the original.
    """
    if type(exc) is StatementError and isinstance(exc.orig, ValueError):
        raise exc.orig from exc
    raise exc
