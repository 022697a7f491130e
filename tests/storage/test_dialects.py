"""The dialect layer: URLs, engines tuned per role, and the statements spelt per database.

Engines are created straight from :mod:`carewire.storage.dialects` (no
:class:`~carewire.storage.Database` around them) on a SQLite file and, with
``CAREWIRE_TEST_PG_URL``, on a fresh PostgreSQL database (the ``db_url``
fixture of ``conftest.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from carewire.errors import ConfigError
from carewire.storage import dialects
from carewire.storage.dialects import Role

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

metadata = MetaData()
# Two-column key, like the roster's and private storage's tables.
counters = Table(
    "dialect_counters",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("item", String(64), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("hits", Integer, nullable=False),
)
# A linguistic collation on PostgreSQL, so that code point order has to be asked for.
names = Table(
    "dialect_names",
    metadata,
    Column("name", String(64).with_variant(String(64, collation="und-x-icu"), "postgresql")),
)


@asynccontextmanager
async def engine(url: str | Path, role: Role) -> AsyncIterator[AsyncEngine]:
    """An engine from :func:`dialects.create_engine`, disposed of afterwards."""
    created = dialects.create_engine(dialects.normalize_url(str(url)), role)
    try:
        yield created
    finally:
        await created.dispose()


async def pragmas(created: AsyncEngine) -> dict[str, object]:
    """The pragmas a fresh SQLite connection of ``created`` runs with."""
    async with created.connect() as conn:
        return {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in (
                "busy_timeout",
                "journal_mode",
                "synchronous",
                "foreign_keys",
                "query_only",
            )
        }


def sqlite_url(tmp_path: Path, name: str = "cw.db") -> str:
    return f"sqlite:///{tmp_path / name}"


# -- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "driver", "backend"),
    [
        ("sqlite:///data/cw.db", "sqlite+aiosqlite", "sqlite"),
        ("sqlite+aiosqlite:///data/cw.db", "sqlite+aiosqlite", "sqlite"),
        (
            "postgres://nurse:s3cret@db.example:6432/cw?ssl=require",
            "postgresql+asyncpg",
            "postgresql",
        ),
        (
            "postgresql://nurse:s3cret@db.example:6432/cw?ssl=require",
            "postgresql+asyncpg",
            "postgresql",
        ),
        (
            "postgres+asyncpg://nurse:s3cret@db.example:6432/cw?ssl=require",
            "postgresql+asyncpg",
            "postgresql",
        ),
        (
            "postgresql+asyncpg://nurse:s3cret@db.example:6432/cw?ssl=require",
            "postgresql+asyncpg",
            "postgresql",
        ),
    ],
)
def test_normalize_url_selects_the_async_driver_and_keeps_the_rest(
    url: str, driver: str, backend: str
) -> None:
    parsed = dialects.normalize_url(url)
    assert parsed.drivername == driver
    assert dialects.dialect_of(parsed) == backend
    if backend == "postgresql":
        assert (parsed.username, parsed.password, parsed.host, parsed.port) == (
            "nurse",
            "s3cret",
            "db.example",
            6432,
        )
        assert (parsed.database, dict(parsed.query)) == ("cw", {"ssl": "require"})
    else:
        assert parsed.database == "data/cw.db"


def test_normalize_url_takes_a_parsed_url_too() -> None:
    once = dialects.normalize_url("postgresql://h/cw")
    assert dialects.normalize_url(once) == once


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgresql+psycopg2://h/db", "unsupported scheme 'postgresql\\+psycopg2'"),
        ("sqlite+pysqlite:///cw.db", "unsupported scheme 'sqlite\\+pysqlite'"),
        ("not a url", "not a valid database URL"),
    ],
)
def test_normalize_url_refuses_what_it_cannot_serve(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dialects.normalize_url(url)


@pytest.mark.parametrize(
    ("url", "memory"),
    [
        ("sqlite://", True),
        ("sqlite:///:memory:", True),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", True),
        ("sqlite:///data/cw.db", False),
        ("sqlite:////var/lib/carewire/cw.db", False),
    ],
)
def test_is_memory(url: str, memory: bool) -> None:
    assert dialects.is_memory(dialects.normalize_url(url)) is memory


def test_check_sqlite_version(monkeypatch: pytest.MonkeyPatch) -> None:
    dialects.check_sqlite_version()  # the SQLite this suite runs on is new enough
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(ConfigError, match=r"SQLite 3\.34\.1 is too old, 3\.35\.0 or newer"):
        dialects.check_sqlite_version()


async def test_old_sqlite_is_refused_before_any_engine_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 0))
    url = dialects.normalize_url(sqlite_url(tmp_path / "never"))
    with pytest.raises(ConfigError, match="too old"):
        dialects.create_engine(url, Role.WRITER)
    with pytest.raises(ConfigError, match="too old"):
        dialects.create_point_reader(url)
    assert not (tmp_path / "never").exists()


# -- SQLite engines -------------------------------------------------------------------


async def test_sqlite_writer_one_connection_immediate_transactions(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new" / "dir")
    async with engine(url, Role.WRITER) as writer:
        assert await pragmas(writer) == {
            "busy_timeout": dialects.SQLITE_BUSY_TIMEOUT_MS,
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "query_only": 0,
        }
        assert isinstance(writer.pool, QueuePool) and writer.pool.size() == 1
        async with writer.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, aiosqlite.Connection)
            # sqlite3 issues BEGIN IMMEDIATE before the first write of a transaction.
            assert driver.isolation_level == "IMMEDIATE"
    assert (tmp_path / "new" / "dir" / "cw.db").exists()  # parents are created


async def test_sqlite_writer_enforces_foreign_keys(tmp_path: Path) -> None:
    async with engine(sqlite_url(tmp_path), Role.WRITER) as writer:
        async with writer.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            await conn.exec_driver_sql(
                "CREATE TABLE child (id INTEGER PRIMARY KEY,"
                " parent INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE)"
            )
            await conn.exec_driver_sql("INSERT INTO parent VALUES (1)")
            await conn.exec_driver_sql("INSERT INTO child VALUES (10, 1)")
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            async with writer.begin() as conn:
                await conn.exec_driver_sql("INSERT INTO child VALUES (11, 2)")
        async with writer.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM parent WHERE id = 1")
            assert (await conn.exec_driver_sql("SELECT count(*) FROM child")).scalar() == 0


async def test_sqlite_readers_are_a_read_only_autocommit_pool(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    async with engine(url, Role.WRITER) as writer, engine(url, Role.READER) as reader:
        async with writer.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        found = await pragmas(reader)
        assert (found["query_only"], found["foreign_keys"], found["journal_mode"]) == (1, 1, "wal")
        assert isinstance(reader.pool, QueuePool)
        assert reader.pool.size() == dialects.SQLITE_READERS
        async with reader.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT x FROM t")).scalar() == 1
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, aiosqlite.Connection)
            assert not raw.driver_connection.in_transaction  # autocommit: no BEGIN
            with pytest.raises(OperationalError, match="readonly"):
                await conn.exec_driver_sql("INSERT INTO t VALUES (2)")


async def test_sqlite_migrations_run_ddl_in_a_transaction(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    async with engine(url, Role.MIGRATE) as migrator:
        assert isinstance(migrator.pool, NullPool)
        found = await pragmas(migrator)
        assert (found["foreign_keys"], found["query_only"]) == (0, 0)  # table rebuilds
        async with migrator.connect() as conn:
            await conn.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
            await conn.commit()
            await conn.exec_driver_sql("CREATE TABLE dropped (x INTEGER)")
            await conn.rollback()
        async with migrator.connect() as conn:
            tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
    assert tables == ["kept"]


async def test_in_memory_sqlite_shares_one_connection() -> None:
    async with engine("sqlite://", Role.WRITER) as writer:
        assert isinstance(writer.pool, StaticPool)
        async with writer.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        async with writer.connect() as conn:  # the same database, so the same connection
            assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 0
    async with engine("sqlite:///:memory:", Role.READER) as reader:
        assert isinstance(reader.pool, StaticPool)


async def test_point_reader_is_synchronous_read_only_and_sees_commits(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert dialects.create_point_reader(dialects.normalize_url("sqlite://")) is None
    assert dialects.create_point_reader(dialects.normalize_url("postgresql://h/cw")) is None
    point = dialects.create_point_reader(dialects.normalize_url(url))
    assert point is not None
    try:
        assert point.dialect.driver == "pysqlite"
        assert isinstance(point.pool, QueuePool) and point.pool.size() == 1
        async with engine(url, Role.WRITER) as writer:
            async with writer.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                await conn.exec_driver_sql("INSERT INTO t VALUES (7)")
            with point.connect() as sync_conn:
                assert sync_conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
                assert sync_conn.exec_driver_sql("SELECT x FROM t").scalar() == 7
                with pytest.raises(OperationalError, match="readonly"):
                    sync_conn.exec_driver_sql("DELETE FROM t")
    finally:
        point.dispose()


# -- PostgreSQL engines -----------------------------------------------------------------


@POSTGRES_ONLY
async def test_postgres_engines_by_role(db_url: str) -> None:
    async with (
        engine(db_url, Role.WRITER) as writer,
        engine(db_url, Role.READER) as reader,
        engine(db_url, Role.MIGRATE) as migrator,
    ):
        assert isinstance(writer.pool, QueuePool) and isinstance(reader.pool, QueuePool)
        assert writer.pool.size() == reader.pool.size() == dialects.PG_POOL_SIZE
        assert isinstance(migrator.pool, NullPool)
        # Transactional DDL needs no help on PostgreSQL.
        async with migrator.connect() as conn:
            await conn.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
            await conn.commit()
            await conn.exec_driver_sql("CREATE TABLE dropped (x INTEGER)")
            await conn.rollback()
        # The reader runs in autocommit: what it does is never held in a transaction.
        async with reader.connect() as conn:
            await conn.exec_driver_sql("INSERT INTO kept VALUES (1)")  # no commit
        async with writer.connect() as conn:
            tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
            assert (await conn.exec_driver_sql("SELECT count(*) FROM kept")).scalar() == 1
    assert tables == ["kept"]


# -- statements on both databases -------------------------------------------------------


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """The dialect name and a writer engine on a database holding this module's tables."""
    async with engine(db_url, Role.WRITER) as created:
        async with created.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield created.dialect.name, created


async def rows(created: AsyncEngine) -> list[tuple[str, str, str, int]]:
    async with created.connect() as conn:
        result = await conn.execute(
            select(counters.c.owner, counters.c.item, counters.c.value, counters.c.hits).order_by(
                counters.c.owner, counters.c.item
            )
        )
        return [(r.owner, r.item, r.value, r.hits) for r in result]


async def test_insert_ignore_keeps_the_existing_row(writer: tuple[str, AsyncEngine]) -> None:
    dialect, created = writer
    stmt = dialects.insert_ignore(dialect, counters, ["owner", "item"]).returning(counters.c.item)
    async with created.begin() as conn:
        first = await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v1", "hits": 1}])
        assert first.scalars().all() == ["a"]
        again = await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v2", "hits": 2}])
        assert again.scalars().all() == []  # nothing inserted, nothing returned
        await conn.execute(stmt, [{"owner": "ann", "item": "b", "value": "v3", "hits": 3}])
    assert await rows(created) == [("ann", "a", "v1", 1), ("ann", "b", "v3", 3)]


async def test_upsert_overwrites_every_other_column_by_default(
    writer: tuple[str, AsyncEngine],
) -> None:
    dialect, created = writer
    stmt = dialects.upsert(dialect, counters, ["owner", "item"])
    async with created.begin() as conn:
        await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v1", "hits": 1}])
        await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v2", "hits": 5}])
        await conn.execute(stmt, [{"owner": "bob", "item": "a", "value": "b1", "hits": 1}])
    assert await rows(created) == [("ann", "a", "v2", 5), ("bob", "a", "b1", 1)]


async def test_upsert_updates_only_the_named_columns(writer: tuple[str, AsyncEngine]) -> None:
    dialect, created = writer
    stmt = dialects.upsert(dialect, counters, ["owner", "item"], update=["value"])
    async with created.begin() as conn:
        await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v1", "hits": 1}])
        await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": "v2", "hits": 9}])
    assert await rows(created) == [("ann", "a", "v2", 1)]


async def test_upsert_set_expressions_win_over_the_new_values(
    writer: tuple[str, AsyncEngine],
) -> None:
    dialect, created = writer
    stmt = dialects.upsert(dialect, counters, ["owner", "item"], set_={"hits": counters.c.hits + 1})
    async with created.begin() as conn:
        for value in ("v1", "v2", "v3"):
            await conn.execute(stmt, [{"owner": "ann", "item": "a", "value": value, "hits": 1}])
    assert await rows(created) == [("ann", "a", "v3", 3)]


WORDS = ["b", "B", "a", "_x", "É", "é", "Z", "ab", "a b"]


async def test_binary_order_sorts_like_python(writer: tuple[str, AsyncEngine]) -> None:
    dialect, created = writer
    async with created.begin() as conn:
        await conn.execute(insert(names), [{"name": w} for w in WORDS])
    async with created.connect() as conn:
        ordered = select(names.c.name).order_by(dialects.binary_order(dialect, names.c.name))
        assert (await conn.execute(ordered)).scalars().all() == sorted(WORDS)
        if dialect == dialects.POSTGRESQL:
            # Without it the column's linguistic collation decides: 'b' before 'B', 'é' near 'e'.
            plain = select(names.c.name).order_by(names.c.name)
            assert (await conn.execute(plain)).scalars().all() != sorted(WORDS)


def test_statements_are_spelt_per_dialect() -> None:
    lite, pg = sqlite.dialect(), postgresql.dialect()  # type: ignore[no-untyped-call]
    ignore = dialects.insert_ignore(dialects.SQLITE, counters, ["owner", "item"])
    assert "ON CONFLICT (owner, item) DO NOTHING" in str(ignore.compile(dialect=lite))
    upsert = dialects.upsert(dialects.POSTGRESQL, counters, ["owner", "item"], update=["value"])
    sql = str(upsert.compile(dialect=pg))
    assert "ON CONFLICT (owner, item) DO UPDATE SET value = excluded.value" in sql
    assert "hits = " not in sql.split("DO UPDATE", 1)[1]
    assert 'COLLATE "C"' in str(
        select(names.c.name)
        .order_by(dialects.binary_order(dialects.POSTGRESQL, names.c.name))
        .compile(dialect=pg)
    )
    assert "COLLATE" not in str(
        select(names.c.name)
        .order_by(dialects.binary_order(dialects.SQLITE, names.c.name))
        .compile(dialect=lite)
    )
