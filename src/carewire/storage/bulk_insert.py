"""Bulk inserts of one shape on SQLite: one prepared multi-row ``INSERT … RETURNING id``.

Theory of operation: message tracking inserts thousands of rows a second, all
with the same columns and none of them PHI. Going through SQLAlchemy's
``insertmanyvalues`` costs more per row in Python than SQLite takes to store
it (the statement is re-rendered for every page, every parameter travels
through a dictionary and a second, compiled parameter list, and every returned
id becomes a row object). :class:`PlainInserts` works out once per table and
list of columns the SQL prefix, the placeholder group of one row and each
column's bind processor (the same functions SQLAlchemy applies, such as
SQLite's date-time text; for our ``UTCDateTime`` its two steps fused in
:func:`~carewire.storage.columns.sqlite_utc_text`), and then sends one
``INSERT INTO t (a, b) VALUES (?, ?), (?, ?) … RETURNING id`` per page with a
flat tuple of processed values, through the same connection and transaction.
So what is stored is byte for byte what the SQLAlchemy statement would store.

SQLite returns the ids of a multi-row VALUES list in insertion order from an
increasing sequence; :meth:`PlainInserts.insert` sorts them, as the generic
path does. PostgreSQL keeps the generic path (asyncpg already sends such
batches efficiently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from carewire.storage.columns import is_plain_sqlite_utc, sqlite_utc_text

#: Bound parameters per statement: SQLite's default limit is 32,766 (since 3.32).
MAX_PARAMETERS = 32_000
#: Rows per statement at most (a page's SQL text stays small).
MAX_ROWS = 500

Processor = Callable[[Any], Any] | None


class _Plan:
    """One table and list of columns: the SQL pieces and the bind processors."""

    __slots__ = ("prefix", "processors", "row_sql", "rows_per_page", "statements")

    def __init__(self, table: Table, columns: Sequence[str], conn: AsyncConnection) -> None:
        dialect = conn.dialect
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        self.prefix = f"INSERT INTO {quote(table.name)} ({names}) VALUES "
        self.row_sql = "(" + ", ".join("?" for _ in columns) + ")"
        self.processors: tuple[Processor, ...] = tuple(
            # Timestamps (two or three per row) in one step; every other column with the
            # dialect's own type's processor (dialect_impl), as SQLAlchemy uses it.
            sqlite_utc_text
            if is_plain_sqlite_utc(table.c[c].type, dialect)
            else table.c[c].type.dialect_impl(dialect).bind_processor(dialect)
            for c in columns
        )
        self.rows_per_page = max(1, min(MAX_ROWS, MAX_PARAMETERS // max(1, len(columns))))
        self.statements: dict[int, str] = {}  # by row count

    def sql(self, rows: int, *, returning: bool = True) -> str:
        key = rows if returning else -rows
        found = self.statements.get(key)
        if found is None:
            found = self.prefix + ", ".join([self.row_sql] * rows)
            if returning:
                found += " RETURNING id"
            if len(self.statements) < 64:
                self.statements[key] = found
        return found


def _flat(
    rows: Iterable[Iterable[object]], processors: tuple[Processor, ...]
) -> tuple[object, ...]:
    """The bound values of ``rows``, row after row, each through its column's processor."""
    flat: list[object] = []
    if all(process is None for process in processors):  # record ids, say: as they are
        for row in rows:
            flat += row
        return tuple(flat)
    for row in rows:
        for value, process in zip(row, processors, strict=True):
            flat.append(value if process is None else process(value))
    return tuple(flat)


class PlainInserts:
    """Prepared bulk inserts of plain rows (no PHI) on SQLite, by table and columns."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def _plan(self, conn: AsyncConnection, table: Table, columns: tuple[str, ...]) -> _Plan:
        key = (table.name, columns)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(table, columns, conn)
        return plan

    async def insert(
        self,
        conn: AsyncConnection,
        table: Table,
        columns: tuple[str, ...],
        rows: Sequence[Mapping[str, object]],
    ) -> list[int]:
        """Insert ``rows`` (each with exactly ``columns``' fields, in order); ids ascending."""
        plan = self._plan(conn, table, columns)
        ids: list[int] = []
        step = plan.rows_per_page
        for start in range(0, len(rows), step):
            page = rows[start : start + step]
            flat = _flat((row.values() for row in page), plan.processors)
            result = await conn.exec_driver_sql(plan.sql(len(page)), flat)
            ids.extend(int(r[0]) for r in result.fetchall())
        ids.sort()
        return ids

    async def insert_pairs(
        self, conn: AsyncConnection, table: Table, columns: tuple[str, str], pairs: Sequence[Any]
    ) -> None:
        """Insert two-column rows (an m:n link's join rows, record ids) without reading back.

        A groupchat message links to each recipient (MESSAGES.for): a couple of hundred
        join rows per message, one statement per page instead of an ``executemany``.
        """
        plan = self._plan(conn, table, columns)
        step = plan.rows_per_page
        for start in range(0, len(pairs), step):
            page = pairs[start : start + step]
            sql = plan.sql(len(page), returning=False)
            await conn.exec_driver_sql(sql, _flat(page, plan.processors))
