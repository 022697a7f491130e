"""Dataset tables generated from their definitions, and the record store on them.

Theory of operation: each dataset ``X`` is a table ``ds_x`` with an integer
``id``, one nullable column per attribute (``required`` is enforced by the
service, so adding a column never needs a default), one ``<link>_id``
foreign key per n:1 link (and per 1:1 link on the side that owns it, see
:func:`~carewire.datasets.model.holds_reference`) and a unique constraint
over the key columns. Each m:n pair shares one join table ``dsj_x_<link>``
(``left_id`` → the owning side, ``right_id`` → the other). 1:n links have no
column: they are the reverse of an n:1 and are read from the other table.

:meth:`SqlDatasetStore.apply` creates what is missing and never drops; an
existing column whose type no longer matches its definition is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from carewire.datasets.definitions import DefinitionError, dataset_from_dict, dataset_to_dict
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
    Record,
    RecordId,
    holds_reference,
    owns_join_table,
)
from carewire.datasets.query import Filter, FilterOp, Page, Query
from carewire.errors import ConflictError
from carewire.storage.database import Database, Transaction
from carewire.storage.tables import NAMING_CONVENTION, UTCDateTime, dataset_definitions

log = logging.getLogger(__name__)

_ID = BigInteger().with_variant(Integer(), "sqlite")
_CHUNK = 500  # ids per IN (...) list
_MAX_IDENT = 63  # PostgreSQL's identifier length


def table_name(dataset: str) -> str:
    """The table of a dataset (``BEDS`` → ``ds_beds``)."""
    return _ident(f"ds_{dataset.lower()}")


def join_table_name(dataset: str, link: str) -> str:
    """The join table of an m:n link, named after its owning side."""
    return _ident(f"dsj_{dataset.lower()}__{link}")


def ref_column(link: str) -> str:
    """The foreign-key column of a to-one link (``room`` → ``room_id``)."""
    return f"{link}_id"


def _ident(name: str) -> str:
    if len(name) <= _MAX_IDENT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_IDENT - 9]}_{digest}"


def _column_type(kind: AttrType) -> TypeEngine[Any]:
    types: dict[AttrType, TypeEngine[Any]] = {
        AttrType.STRING: Text(),
        AttrType.INTEGER: BigInteger(),
        AttrType.BOOLEAN: Boolean(),
        AttrType.DATE: Date(),
        AttrType.DATETIME: UTCDateTime(),
    }
    return types[kind]


def _type_family(sql_type: TypeEngine[Any]) -> AttrType | None:
    """Which attribute type a reflected column can hold (None: none of ours)."""
    if isinstance(sql_type, Boolean):
        return AttrType.BOOLEAN
    if isinstance(sql_type, DateTime):
        return AttrType.DATETIME
    if isinstance(sql_type, Date):
        return AttrType.DATE
    if isinstance(sql_type, Integer):
        return AttrType.INTEGER
    if isinstance(sql_type, String):
        return AttrType.STRING
    return None


def _attribute_column(attr: Attribute) -> Column[Any]:
    return Column(attr.name, _column_type(attr.type), nullable=True)


def _reference_column(link: Link) -> Column[Any]:
    return Column(
        ref_column(link.name), _ID, ForeignKey(f"{table_name(link.target)}.id"), nullable=True
    )


def _reference_index(table: str, link: Link) -> Index:
    col = ref_column(link.name)
    unique = link.cardinality is Cardinality.ONE_TO_ONE
    return Index(_ident(f"ix_{table}__{col}"), col, unique=unique)


class _Join:
    """One side's view of a join table."""

    __slots__ = ("mine", "other", "table")

    def __init__(self, table: Table, mine: str, other: str) -> None:
        self.table, self.mine, self.other = table, mine, other


class _Schema:
    """SQLAlchemy tables for one complete set of definitions."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.metadata = MetaData(naming_convention=NAMING_CONVENTION)
        self.datasets: dict[str, Dataset] = {ds.name: ds for ds in datasets}
        self.tables: dict[str, Table] = {}
        self.joins: dict[tuple[str, str], _Join] = {}
        for ds in datasets:
            self.tables[ds.name] = self._table(ds)
        for ds in datasets:
            for link in ds.links:
                if owns_join_table(ds.name, link):
                    self._join_table(ds, link)

    def _table(self, ds: Dataset) -> Table:
        name = table_name(ds.name)
        columns: list[Any] = [Column("id", _ID, primary_key=True, autoincrement=True)]
        key: list[str] = []
        for attr in ds.attributes:
            columns.append(_attribute_column(attr))
            if attr.is_key:
                key.append(attr.name)
        for link in ds.links:
            if holds_reference(ds.name, link):
                col = ref_column(link.name)
                columns.append(_reference_column(link))
                columns.append(_reference_index(name, link))
                if link.is_key:
                    key.append(col)
        if key:
            columns.append(UniqueConstraint(*key, name=_ident(f"uq_{name}_key")))
        return Table(name, self.metadata, *columns, sqlite_autoincrement=True)

    def _join_table(self, ds: Dataset, link: Link) -> None:
        name = join_table_name(ds.name, link.name)
        table = Table(
            name,
            self.metadata,
            Column("left_id", _ID, ForeignKey(f"{table_name(ds.name)}.id", ondelete="CASCADE")),
            Column(
                "right_id", _ID, ForeignKey(f"{table_name(link.target)}.id", ondelete="CASCADE")
            ),
            PrimaryKeyConstraint("left_id", "right_id", name=_ident(f"pk_{name}")),
            Index(_ident(f"ix_{name}_right_id"), "right_id"),
        )
        self.joins[(ds.name, link.name)] = _Join(table, "left_id", "right_id")
        self.joins[(link.target, link.reverse)] = _Join(table, "right_id", "left_id")


def _record(ds: Dataset, row: RowMapping) -> Record:
    values: dict[str, object] = {a.name: row[a.name] for a in ds.attributes}
    for link in ds.links:
        if holds_reference(ds.name, link):
            values[link.name] = row[ref_column(link.name)]
    return Record(dataset=ds.name, id=RecordId(row["id"]), values=values)


def _row_values(ds: Dataset, values: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in values.items():
        link = ds.link(name)
        out[ref_column(name) if link is not None else name] = value
    return out


def _chunks(ids: Sequence[RecordId]) -> list[Sequence[RecordId]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


class SqlDatasetStore:
    """The record store and schema store on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._schema = _Schema([])

    # --- schema -----------------------------------------------------------

    async def load_definitions(self) -> list[Dataset]:
        """The definitions saved in the database."""
        async with self._db.read("load_dataset_definitions") as conn:
            rows = (await conn.execute(select(dataset_definitions))).all()
        return [
            dataset_from_dict(r.name, json.loads(r.definition), is_builtin=r.is_builtin)
            for r in rows
        ]

    async def apply(self, datasets: Sequence[Dataset], changed: Sequence[DatasetName]) -> None:
        """Save ``changed`` definitions and create missing tables and columns, atomically."""
        schema = _Schema(datasets)
        now = datetime.now(UTC)
        async with self._db.transaction("apply_dataset_definitions") as txn:
            await txn.conn.run_sync(_create_missing, schema)
            for name in changed:
                ds = schema.datasets[name]
                await self._save_definition(txn, ds, now)
        self._schema = schema

    async def _save_definition(self, txn: Transaction, ds: Dataset, now: datetime) -> None:
        text = json.dumps(dataset_to_dict(ds), sort_keys=True)
        values = {"definition": text, "is_builtin": ds.is_builtin, "updated_at": now}
        result = await txn.conn.execute(
            update(dataset_definitions).where(dataset_definitions.c.name == ds.name).values(values)
        )
        if result.rowcount == 0:
            await txn.conn.execute(insert(dataset_definitions).values(name=ds.name, **values))

    async def count(self, ds: Dataset) -> int:
        """How many records ``ds`` holds (0 before its table exists)."""
        table = self._schema.tables.get(ds.name)
        if table is None:
            return 0
        async with self._db.read("count_records") as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    # --- reads ------------------------------------------------------------

    def _table(self, ds: Dataset) -> Table:
        return self._schema.tables[ds.name]

    async def get(self, ds: Dataset, record_id: RecordId) -> Record | None:
        """One record by id."""
        found = await self.get_many(ds, [record_id])
        return found.get(record_id)

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records by id (missing ones are left out)."""
        async with self._db.read("get_records") as conn:
            return await _get_many(conn, ds, self._table(ds), ids)

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""
        async with self._db.read("find_record_by_key") as conn:
            return await _find_by_key(conn, ds, self._table(ds), key)

    async def follow(
        self, ds: Dataset, link: Link, ids: Sequence[RecordId]
    ) -> dict[RecordId, list[RecordId]]:
        """For each of ``ids``, the ids ``link`` reaches (in id order)."""
        out: dict[RecordId, list[RecordId]] = {i: [] for i in ids}
        async with self._db.read("follow_link") as conn:
            for chunk in _chunks(list(out)):
                for src, dst in await _follow(conn, self._schema, ds, link, chunk):
                    if dst is not None:
                        out[RecordId(src)].append(RecordId(dst))
        return out

    async def query(self, ds: Dataset, query: Query) -> Page:
        """One page of matching records and the total count."""
        table = self._table(ds)
        where = and_(true(), *(_condition(ds, table, f) for f in query.filters))
        order = []
        for s in query.sort:
            col = table.c[ref_column(s.field) if ds.link(s.field) else s.field]
            order.append(col.desc() if s.is_descending else col.asc())
        order.append(table.c.id.asc())
        stmt = select(table).where(where).order_by(*order).offset(query.offset).limit(query.limit)
        async with self._db.read("query_records") as conn:
            rows = (await conn.execute(stmt)).mappings().all()
            total = (
                await conn.execute(select(func.count()).select_from(table).where(where))
            ).scalar_one()
        return Page(records=tuple(_record(ds, r) for r in rows), total=int(total))

    # --- writes -----------------------------------------------------------

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[SqlRecordWriter]:
        """Open a named write transaction."""
        try:
            async with self._db.transaction(name) as txn:
                yield SqlRecordWriter(txn, self._schema)
        except IntegrityError as exc:
            log.info("write %s refused by the database: %s", name, type(exc.orig).__name__)
            raise ConflictError(
                "the write conflicts with a record written at the same time (duplicate key "
                "or a link to a record just deleted); retry it"
            ) from None


class SqlRecordWriter:
    """Statements inside one write transaction."""

    def __init__(self, txn: Transaction, schema: _Schema) -> None:
        self._txn = txn
        self._conn = txn.conn
        self._schema = schema

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once the transaction committed."""
        self._txn.after_commit(callback)

    async def get(self, ds: Dataset, record_id: RecordId) -> Record | None:
        """A record as this transaction sees it."""
        table = self._schema.tables[ds.name]
        row = (
            (await self._conn.execute(select(table).where(table.c.id == record_id)))
            .mappings()
            .first()
        )
        return None if row is None else _record(ds, row)

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""
        return await _find_by_key(self._conn, ds, self._schema.tables[ds.name], key)

    async def insert(self, ds: Dataset, values: Mapping[str, object]) -> RecordId:
        """Insert a record; returns its id."""
        table = self._schema.tables[ds.name]
        result = await self._conn.execute(insert(table).values(_row_values(ds, values)))
        pk = result.inserted_primary_key
        assert pk is not None
        return RecordId(int(pk[0]))

    async def update(self, ds: Dataset, record_id: RecordId, values: Mapping[str, object]) -> None:
        """Change some fields of a record."""
        if not values:
            return
        table = self._schema.tables[ds.name]
        await self._conn.execute(
            update(table).where(table.c.id == record_id).values(_row_values(ds, values))
        )

    async def delete(self, ds: Dataset, record_id: RecordId) -> None:
        """Delete a record and its m:n link rows."""
        for (name, _), join in self._schema.joins.items():
            if name == ds.name:
                jt = join.table
                await self._conn.execute(delete(jt).where(jt.c[join.mine] == record_id))
        table = self._schema.tables[ds.name]
        await self._conn.execute(delete(table).where(table.c.id == record_id))

    async def linked_ids(self, ds: Dataset, link: Link, record_id: RecordId) -> list[RecordId]:
        """The records ``link`` reaches from one record."""
        pairs = await _follow(self._conn, self._schema, ds, link, [record_id])
        return [RecordId(dst) for _, dst in pairs if dst is not None]

    async def add_links(
        self, ds: Dataset, link: Link, record_id: RecordId, targets: Sequence[RecordId]
    ) -> None:
        """Add m:n link rows (existing ones are left alone)."""
        join = self._schema.joins[(ds.name, link.name)]
        have = set(await self.linked_ids(ds, link, record_id))
        rows = [
            {join.mine: record_id, join.other: t} for t in dict.fromkeys(targets) if t not in have
        ]
        if rows:
            await self._conn.execute(insert(join.table), rows)

    async def remove_links(
        self, ds: Dataset, link: Link, record_id: RecordId, targets: Sequence[RecordId]
    ) -> None:
        """Remove m:n link rows."""
        join = self._schema.joins[(ds.name, link.name)]
        jt = join.table
        for chunk in _chunks(list(targets)):
            await self._conn.execute(
                delete(jt).where(jt.c[join.mine] == record_id, jt.c[join.other].in_(chunk))
            )

    async def missing(self, ds: Dataset, ids: Sequence[RecordId]) -> list[RecordId]:
        """Which of ``ids`` are not records of ``ds``."""
        table = self._schema.tables[ds.name]
        found: set[int] = set()
        for chunk in _chunks(list(ids)):
            found.update(
                (
                    await self._conn.execute(select(table.c.id).where(table.c.id.in_(chunk)))
                ).scalars()
            )
        return [i for i in ids if i not in found]

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records by id as this transaction sees them (missing ones are left out)."""
        return await _get_many(self._conn, ds, self._schema.tables[ds.name], ids)

    async def find_many_by_key(
        self, ds: Dataset, keys: Sequence[Mapping[str, object]]
    ) -> list[Record]:
        """The records whose key fields equal one of ``keys`` (one ``IN`` list per 500 keys)."""
        if not keys:
            return []
        table = self._schema.tables[ds.name]
        names = list(keys[0])
        cols = [table.c[ref_column(n) if ds.link(n) else n] for n in names]
        target: Any = cols[0] if len(cols) == 1 else tuple_(*cols)
        out: list[Record] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            wanted: list[Any] = [
                key[names[0]] if len(cols) == 1 else tuple(key[n] for n in names) for key in chunk
            ]
            rows = await self._conn.execute(select(table).where(target.in_(wanted)))
            out.extend(_record(ds, row) for row in rows.mappings())
        return out

    async def insert_many(
        self, ds: Dataset, rows: Sequence[Mapping[str, object]]
    ) -> list[RecordId]:
        """Insert records with one batched ``INSERT … RETURNING id``; ids in row order."""
        if not rows:
            return []
        table = self._schema.tables[ds.name]
        params = [_row_values(ds, r) for r in rows]
        columns = list(dict.fromkeys(c for p in params for c in p))
        full = [{c: p.get(c) for c in columns} for p in params]
        # One multi-row INSERT … VALUES … RETURNING id per page of rows. Both databases
        # insert the rows of a VALUES list in order and take each id from an increasing
        # sequence (SQLite's AUTOINCREMENT, PostgreSQL's serial), so the ids sorted
        # ascending are the rows' ids in row order — the assumption SQLAlchemy's own
        # "implicit sentinel" for autoincrement keys makes. (Asking SQLAlchemy to sort
        # by parameter order makes it fall back to one INSERT per row on SQLite.)
        result = await self._conn.execute(insert(table).returning(table.c.id), full)
        ids = sorted(RecordId(int(i)) for i in result.scalars().all())
        assert len(ids) == len(rows), "INSERT … RETURNING returned a wrong number of ids"
        return ids

    async def update_many(
        self, ds: Dataset, changes: Sequence[tuple[RecordId, Mapping[str, object]]]
    ) -> None:
        """Change records with one ``executemany`` per set of changed columns."""
        table = self._schema.tables[ds.name]
        groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for record_id, values in changes:
            row = _row_values(ds, values)
            if not row:
                continue
            cols = tuple(row)
            params = {f"v{i}": row[c] for i, c in enumerate(cols)}
            groups.setdefault(cols, []).append({"rid": record_id, **params})
        for cols, params_list in groups.items():
            stmt = (
                update(table)
                .where(table.c.id == bindparam("rid"))
                .values({c: bindparam(f"v{i}") for i, c in enumerate(cols)})
            )
            await self._conn.execute(stmt, params_list)

    async def insert_links(
        self, ds: Dataset, link: Link, pairs: Sequence[tuple[RecordId, RecordId]]
    ) -> None:
        """Add the m:n link rows of records that have none yet, with one ``executemany``."""
        join = self._schema.joins[(ds.name, link.name)]
        rows = [{join.mine: a, join.other: b} for a, b in dict.fromkeys(pairs)]
        if rows:
            await self._conn.execute(insert(join.table), rows)

    async def referrers(self, ds: Dataset, record_id: RecordId) -> list[tuple[str, int]]:
        """(``DATASET.link``, count) for each to-one link of another record pointing here."""
        out = []
        for other in list(self._schema.datasets.values()):
            for link in other.links:
                if link.target == ds.name and holds_reference(other.name, link):
                    table = self._schema.tables[other.name]
                    col = table.c[ref_column(link.name)]
                    n = (
                        await self._conn.execute(
                            select(func.count()).select_from(table).where(col == record_id)
                        )
                    ).scalar_one()
                    if n:
                        out.append((f"{other.name}.{link.name}", int(n)))
        return out


async def _get_many(
    conn: AsyncConnection, ds: Dataset, table: Table, ids: Sequence[RecordId]
) -> dict[RecordId, Record]:
    out: dict[RecordId, Record] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        rows = await conn.execute(select(table).where(table.c.id.in_(chunk)))
        for row in rows.mappings():
            rec = _record(ds, row)
            out[rec.id] = rec
    return out


async def _find_by_key(
    conn: AsyncConnection, ds: Dataset, table: Table, key: Mapping[str, object]
) -> Record | None:
    conds = []
    for name, value in key.items():
        col = table.c[ref_column(name) if ds.link(name) else name]
        conds.append(col.is_(None) if value is None else col == value)
    row = (await conn.execute(select(table).where(*conds).limit(1))).mappings().first()
    return None if row is None else _record(ds, row)


async def _follow(
    conn: AsyncConnection, schema: _Schema, ds: Dataset, link: Link, ids: Sequence[RecordId]
) -> list[tuple[int, int | None]]:
    """(source id, target id) pairs for ``link`` from the records ``ids``."""
    if link.cardinality is Cardinality.MANY_TO_MANY:
        join = schema.joins[(ds.name, link.name)]
        jt = join.table
        stmt = (
            select(jt.c[join.mine], jt.c[join.other])
            .where(jt.c[join.mine].in_(ids))
            .order_by(jt.c[join.other])
        )
    elif holds_reference(ds.name, link):
        table = schema.tables[ds.name]
        stmt = select(table.c.id, table.c[ref_column(link.name)]).where(table.c.id.in_(ids))
    else:  # the reverse of a reference held by the target
        target = schema.tables[link.target]
        col = target.c[ref_column(link.reverse)]
        stmt = select(col, target.c.id).where(col.in_(ids)).order_by(target.c.id)
    return [(int(a), None if b is None else int(b)) for a, b in (await conn.execute(stmt)).all()]


def _condition(ds: Dataset, table: Table, f: Filter) -> ColumnElement[bool]:
    col = table.c[ref_column(f.field) if ds.link(f.field) else f.field]
    match f.op:
        case FilterOp.EQ:
            return col.is_(None) if f.value is None else col == f.value
        case FilterOp.NE:
            return col.is_(None) | (col != f.value) if f.value is not None else col.is_not(None)
        case FilterOp.LT:
            return col < f.value
        case FilterOp.LE:
            return col <= f.value
        case FilterOp.GT:
            return col > f.value
        case FilterOp.GE:
            return col >= f.value
        case FilterOp.IN:
            assert isinstance(f.value, list | tuple)
            return col.in_(list(f.value))
        case FilterOp.CONTAINS:
            return col.contains(str(f.value), autoescape=True)
        case FilterOp.EMPTY:
            return or_(col.is_(None), col == "") if isinstance(col.type, Text) else col.is_(None)
        case FilterOp.NOT_EMPTY:
            if isinstance(col.type, Text):
                return and_(col.is_not(None), col != "")
            return col.is_not(None)


def _create_missing(conn: Connection, schema: _Schema) -> None:
    """Create missing tables, then missing columns; refuse type changes first.

    Runs inside the transaction. Everything is checked before the first DDL
    statement, so a refused change leaves no trace even on SQLite (where
    ``ALTER TABLE`` is not rolled back by the driver). New tables come before
    new columns, whose foreign keys may point at them.
    """
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    missing: list[tuple[Table, Column[Any], Link | None]] = []
    problems: list[str] = []
    for ds_name, table in schema.tables.items():
        if table.name not in existing:
            continue
        have = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        ds = schema.datasets[ds_name]
        for column in table.columns:
            attr = ds.attribute(column.name)
            if column.name not in have:
                link = (
                    None
                    if attr
                    else next(ln for ln in ds.links if ref_column(ln.name) == column.name)
                )
                missing.append((table, column, link))
            elif attr is not None and _type_family(have[column.name]) is not attr.type:
                problems.append(
                    f"{ds_name}.{attr.name}: defined as {attr.type} but the stored column "
                    f"is {have[column.name]}; a type cannot be changed once records exist"
                )
    if problems:
        raise DefinitionError(problems)
    to_create = [t for t in schema.metadata.sorted_tables if t.name not in existing]
    schema.metadata.create_all(conn, tables=to_create)
    for table, column, link in missing:
        _add_column(conn, table, column, link)


def _add_column(conn: Connection, table: Table, column: Column[Any], link: Link | None) -> None:
    """``ALTER TABLE … ADD COLUMN`` (with an inline REFERENCES, which both databases accept)."""
    preparer = conn.dialect.identifier_preparer
    ddl = (
        f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(column.name)} "
        f"{column.type.compile(dialect=conn.dialect)}"
    )
    if link is not None:
        ddl += f" REFERENCES {preparer.quote(table_name(link.target))} (id)"
    conn.execute(text(ddl))
    if link is not None:
        index = _reference_index(table.name, link)
        unique = "UNIQUE " if index.unique else ""
        conn.execute(
            text(
                f"CREATE {unique}INDEX {preparer.quote(str(index.name))} "
                f"ON {preparer.quote(table.name)} ({preparer.quote(column.name)})"
            )
        )
