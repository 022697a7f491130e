"""Everything that differs between SQLite and PostgreSQL, in one place.

The rest of :mod:`carewire.storage` is dialect-neutral SQLAlchemy Core; it
asks this module for engines, URLs and the few statements whose spelling
differs (``INSERT … ON CONFLICT``, binary collation for ordering).

SQLite connections are tuned with pragmas on every connect:

* ``journal_mode=WAL`` — readers never block the writer and vice versa.
* ``synchronous=NORMAL`` — in WAL mode a committed transaction survives a
  process crash or a clean restart; only an OS crash or power loss may roll
  back the last few commits (the database is never corrupted).
* ``foreign_keys=ON`` — ``ON DELETE CASCADE`` works (removing an account
  removes everything it owns).
* ``busy_timeout=5000`` — another process holding the write lock is waited
  for instead of failing with "database is locked".

The writer connection lets ``sqlite3`` open transactions with
``BEGIN IMMEDIATE`` right before the first write statement, so the write
lock is taken up front (no lock-upgrade deadlocks between processes, and
``busy_timeout`` applies); reads before that first write see committed
data, which is all a single serialised writer needs. Reader connections run
in autocommit mode with ``query_only=ON``. Migration connections get an
explicit ``BEGIN`` so that DDL is transactional.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Insert, Table, event, pool
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from carewire.errors import ConfigError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: Oldest SQLite with both UPSERT (3.24) and RETURNING (3.35).
MIN_SQLITE_VERSION = (3, 35, 0)
#: Connections in each PostgreSQL pool (one for writes, one for reads).
PG_POOL_SIZE = 10
#: Reader connections for a SQLite file (WAL lets them run beside the writer).
SQLITE_READERS = 4
#: ``busy_timeout`` in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 5000

_SQLITE_DRIVERS = {"sqlite": "sqlite+aiosqlite", "sqlite+aiosqlite": "sqlite+aiosqlite"}
_PG_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgres+asyncpg": "postgresql+asyncpg",
}


class Role(enum.Enum):
    """What an engine is used for; decides pooling and SQLite pragmas."""

    WRITER = "writer"
    READER = "reader"
    MIGRATE = "migrate"


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and select the asyncio driver.

    ``sqlite:///path`` becomes ``sqlite+aiosqlite:///path`` and
    ``postgres://`` / ``postgresql://`` become ``postgresql+asyncpg://``.

    Args:
        url: The configured database URL.

    Returns:
        The URL with its async driver.

    Raises:
        ConfigError: The URL is malformed or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("database url: not a valid database URL") from exc
    driver = _SQLITE_DRIVERS.get(parsed.drivername) or _PG_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"database url: unsupported scheme {parsed.drivername!r}"
            " (use sqlite:///path or postgresql://…)"
        )
    return parsed.set(drivername=driver)


def unreachable(url: str | URL, exc: BaseException) -> ConfigError:
    """One line for a database that cannot be opened at all (refused, unknown, no access).

    The password is never shown; the line names the setting and its variable.
    """
    try:
        shown = normalize_url(url).render_as_string(hide_password=True)
    except ConfigError:
        shown = "(an unreadable URL)"
    cause = getattr(exc, "orig", None) or exc
    reason = " ".join(str(cause).split()) or type(cause).__name__
    return ConfigError(
        f"cannot open the database {shown}: {reason} "
        "(check [storage] url or CAREWIRE_STORAGE_URL, and that the database runs)"
    )


def dialect_of(url: URL) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a normalised URL."""
    return url.get_backend_name()


def is_memory(url: URL) -> bool:
    """Whether a normalised SQLite URL names an in-memory database."""
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def check_sqlite_version() -> None:
    """Refuse to run on a SQLite library without UPSERT and RETURNING.

    Raises:
        ConfigError: The linked SQLite is older than :data:`MIN_SQLITE_VERSION`.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        wanted = ".".join(map(str, MIN_SQLITE_VERSION))
        raise ConfigError(
            f"database: SQLite {sqlite3.sqlite_version} is too old, {wanted} or newer is needed"
        )


def create_engine(url: URL, role: Role) -> AsyncEngine:
    """Create an async engine for ``url`` tuned for ``role``.

    Args:
        url: A URL from :func:`normalize_url`.
        role: Writer, reader or migration engine.

    Returns:
        The engine; the caller disposes of it.
    """
    if dialect_of(url) == POSTGRESQL:
        return _create_pg_engine(url, role)
    return _create_sqlite_engine(url, role)


def create_point_reader(url: URL) -> Engine | None:
    """A synchronous engine for tiny indexed reads in the event-loop thread (file SQLite only).

    A primary-key lookup takes tens of microseconds in SQLite; handing it to
    aiosqlite's thread costs several times that in wake-ups and GIL hand-offs
    on a busy core. WAL readers never wait for writers, so reading inline is
    safe for point lookups. None for PostgreSQL and in-memory databases.
    """
    if dialect_of(url) != SQLITE or is_memory(url):
        return None
    check_sqlite_version()
    engine = sa_create_engine(
        url.set(drivername="sqlite+pysqlite"),
        pool_size=1,
        max_overflow=0,
        connect_args={"isolation_level": None, "check_same_thread": False},
        skip_autocommit_rollback=True,
    )
    _run_pragmas_on_connect(engine, _sqlite_pragmas(Role.READER))
    return engine


def _create_pg_engine(url: URL, role: Role) -> AsyncEngine:
    if role is Role.MIGRATE:
        return create_async_engine(url, poolclass=pool.NullPool)
    kwargs: dict[str, Any] = {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_SIZE // 2}
    if role is Role.READER:
        # Engine-wide (not per checkout) autocommit: no BEGIN, no ROLLBACK.
        kwargs.update(isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True)
    return create_async_engine(url, **kwargs)


def _create_sqlite_engine(url: URL, role: Role) -> AsyncEngine:
    check_sqlite_version()
    memory = is_memory(url)
    if not memory and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs = _sqlite_engine_args(role, memory=memory)
    engine = create_async_engine(url, **kwargs)
    _run_pragmas_on_connect(engine.sync_engine, _sqlite_pragmas(role))
    if role is Role.MIGRATE:
        # Transactional DDL: BEGIN before the first statement of any kind.
        event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _run_pragmas_on_connect(engine: Engine, pragmas: list[str]) -> None:
    """Run ``pragmas`` on every new connection of ``engine``."""

    def on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)


def _sqlite_engine_args(role: Role, *, memory: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if role is Role.WRITER:
        # sqlite3 itself emits BEGIN IMMEDIATE before the first write of a
        # transaction (no extra round trip to aiosqlite's thread).
        kwargs["connect_args"] = {"isolation_level": "IMMEDIATE"}
    else:
        # Autocommit at the driver; migrations get an explicit BEGIN.
        kwargs["connect_args"] = {"isolation_level": None}
        kwargs["skip_autocommit_rollback"] = True
    if memory:
        kwargs["poolclass"] = pool.StaticPool
    elif role is Role.MIGRATE:
        kwargs["poolclass"] = pool.NullPool
    elif role is Role.WRITER:
        # One connection: the Database serialises writers with a lock, so
        # writers never contend for SQLite's file lock inside this process.
        kwargs.update(pool_size=1, max_overflow=0)
    else:
        # A fixed pool: overflow connections would each cost a thread, a
        # connect and the pragmas, and be torn down again under load.
        kwargs.update(pool_size=SQLITE_READERS, max_overflow=0, pool_timeout=30)
    return kwargs


def _sqlite_pragmas(role: Role) -> list[str]:
    pragmas = [
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        # Schema changes may rebuild tables; SQLite's own procedure for that
        # runs with foreign keys off (see migrate.py for the final check).
        "PRAGMA foreign_keys=OFF" if role is Role.MIGRATE else "PRAGMA foreign_keys=ON",
        # Deleted and overwritten content is zeroed, so a purged or re-sealed
        # message body does not linger in free pages of the file.
        "PRAGMA secure_delete=ON",
    ]
    if role is Role.READER:
        pragmas.append("PRAGMA query_only=ON")
    return pragmas


def _insert(dialect: str, table: Table) -> sqlite.Insert | pg.Insert:
    return pg.insert(table) if dialect == POSTGRESQL else sqlite.insert(table)


def insert_ignore(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    """``INSERT … ON CONFLICT (keys) DO NOTHING`` for ``table``.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        table: The target table.
        keys: Columns of the unique key that may conflict.

    Returns:
        An insert taking one bound parameter per column.
    """
    return _insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Iterable[str] | None = None,
    set_: dict[str, Any] | None = None,
) -> Insert:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` for ``table``.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        table: The target table.
        keys: Columns of the unique key that may conflict.
        update: Columns overwritten with the new row's values; defaults to
            every column outside ``keys``.
        set_: Explicit ``SET`` expressions (applied after ``update``).

    Returns:
        An insert taking one bound parameter per column.
    """
    ins = _insert(dialect, table)
    if update is None:
        update = [c.name for c in table.columns if c.name not in keys]
    values: dict[str, Any] = {name: ins.excluded[name] for name in update}
    values.update(set_ or {})
    return ins.on_conflict_do_update(index_elements=list(keys), set_=values)


async def sqlite_in_transaction(conn: AsyncConnection) -> bool:
    """Whether SQLite's driver connection under ``conn`` has begun a transaction.

    The writer's driver begins lazily, before the first write statement; a
    store that must take the write lock before reading asks this first, so
    that inside a joined transaction that already wrote it does not begin twice.
    """
    raw = await conn.get_raw_connection()
    return bool(getattr(raw.driver_connection, "in_transaction", False))


def table_names(conn: Connection) -> list[str]:
    """The tables of the connected database (a synchronous connection, via ``run_sync``)."""
    from sqlalchemy import inspect

    return list(inspect(conn).get_table_names())


def binary_order(dialect: str, column: ColumnElement[str]) -> ColumnElement[str]:
    """``column`` for ``ORDER BY`` in code point order on both databases.

    SQLite compares text bytewise already; PostgreSQL needs ``COLLATE "C"``
    so that listings sort like Python's ``sorted``.
    """
    return column.collate("C") if dialect == POSTGRESQL else column
