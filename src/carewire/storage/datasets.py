"""The record store and schema store on the generated dataset tables (SQLite, PostgreSQL).

Implements :class:`~carewire.datasets.store.RecordStore`,
:class:`~carewire.datasets.store.RecordWriter` and
:class:`~carewire.datasets.store.SchemaStore`. How definitions become tables
(and what :meth:`SqlDatasetStore.apply` creates) is
:mod:`carewire.storage.dataset_tables`; mapping rows to records and the reads
shared by the store and its writer are :mod:`carewire.storage.dataset_rows`.

:meth:`SqlDatasetStore.apply` creates what is missing and never drops; an
existing column whose type no longer matches its definition is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from carewire.datasets.definitions import dataset_from_dict, dataset_to_dict
from carewire.datasets.model import Dataset, DatasetName, Link, Record, RecordId, holds_reference
from carewire.datasets.query import Page, Query, phi_refusal
from carewire.errors import ConflictError, ValidationError
from carewire.security.envelope import Keyring
from carewire.storage.database import Database, Transaction
from carewire.storage.dataset_phi import PhiCodec, convert
from carewire.storage.dataset_rows import (
    CHUNK,
    chunks,
    condition,
    fetch_by_key,
    fetch_links,
    fetch_many,
    key_column,
    key_value,
    plain_columns,
    record_of,
    row_values,
    sealed_values,
)
from carewire.storage.dataset_tables import (
    DatasetSchema,
    create_missing,
    join_table_name,
    ref_column,
    table_name,
)
from carewire.storage.tables import dataset_definitions

__all__ = ["SqlDatasetStore", "SqlRecordWriter", "join_table_name", "ref_column", "table_name"]

log = logging.getLogger(__name__)


class SqlDatasetStore:
    """The record store and schema store on one database."""

    def __init__(self, db: Database, keyring: Keyring | None = None) -> None:
        """Store records in ``db``; message bodies and PHI are encrypted with ``keyring``."""
        self._db = db
        self._keyring = keyring
        self._phi = None if keyring is None else PhiCodec(keyring)
        self._schema = DatasetSchema([], keyring)

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
        schema = DatasetSchema(datasets, self._keyring)
        now = datetime.now(UTC)
        async with self._db.transaction("apply_dataset_definitions") as txn:
            await txn.conn.run_sync(_create_and_convert, schema)
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
            return await fetch_many(conn, ds, self._table(ds), ids, self._phi)

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""
        async with self._db.read("find_record_by_key") as conn:
            return await fetch_by_key(conn, ds, self._table(ds), key, self._phi)

    async def follow(
        self, ds: Dataset, link: Link, ids: Sequence[RecordId]
    ) -> dict[RecordId, list[RecordId]]:
        """For each of ``ids``, the ids ``link`` reaches (in id order)."""
        out: dict[RecordId, list[RecordId]] = {i: [] for i in ids}
        async with self._db.read("follow_link") as conn:
            for chunk in chunks(list(out)):
                for src, dst in await fetch_links(conn, self._schema, ds, link, chunk):
                    if dst is not None:
                        out[RecordId(src)].append(RecordId(dst))
        return out

    async def query(self, ds: Dataset, query: Query) -> Page:
        """One page of matching records and the total count."""
        table = self._table(ds)
        where = and_(true(), *(condition(ds, table, f, self._phi) for f in query.filters))
        order = []
        for s in query.sort:
            attr = ds.attribute(s.field)
            if attr is not None and attr.is_phi and self._phi is not None:
                raise ValidationError(f"{ds.name}.{s.field} {phi_refusal('sort')}")
            col = table.c[ref_column(s.field) if ds.link(s.field) else s.field]
            order.append(col.desc() if s.is_descending else col.asc())
        order.append(table.c.id.asc())
        stmt = select(table).where(where).order_by(*order).offset(query.offset).limit(query.limit)
        async with self._db.read("query_records") as conn:
            rows = (await conn.execute(stmt)).mappings().all()
            total = (
                await conn.execute(select(func.count()).select_from(table).where(where))
            ).scalar_one()
        return Page(records=tuple(record_of(ds, r, self._phi) for r in rows), total=int(total))

    # --- writes -----------------------------------------------------------

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[SqlRecordWriter]:
        """Open a named write transaction."""
        try:
            async with self._db.transaction(name) as txn:
                yield SqlRecordWriter(txn, self._schema, self._phi)
        except IntegrityError as exc:
            log.info("write %s refused by the database: %s", name, type(exc.orig).__name__)
            raise ConflictError(
                "the write conflicts with a record written at the same time (duplicate key "
                "or a link to a record just deleted); retry it"
            ) from None


def _create_and_convert(conn: Connection, schema: DatasetSchema) -> None:
    """Create what is missing, then bring the PHI attributes' rows in line with their flags."""
    convert(conn, schema, create_missing(conn, schema))


class SqlRecordWriter:
    """Statements inside one write transaction."""

    def __init__(self, txn: Transaction, schema: DatasetSchema, phi: PhiCodec | None) -> None:
        self._txn = txn
        self._conn = txn.conn
        self._schema = schema
        self._phi = phi

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
        return None if row is None else record_of(ds, row, self._phi)

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""
        return await fetch_by_key(self._conn, ds, self._schema.tables[ds.name], key, self._phi)

    async def insert(self, ds: Dataset, values: Mapping[str, object]) -> RecordId:
        """Insert a record; returns its id."""
        table = self._schema.tables[ds.name]
        result = await self._conn.execute(insert(table).values(row_values(ds, values, self._phi)))
        pk = result.inserted_primary_key
        assert pk is not None
        record_id = RecordId(int(pk[0]))
        if self._phi is not None and ds.has_phi:
            # The sealed values are bound to the record id, known only now.
            sealed = sealed_values(ds, values, self._phi, record_id)
            if sealed:
                await self._conn.execute(
                    update(table).where(table.c.id == record_id).values(sealed)
                )
        return record_id

    async def update(self, ds: Dataset, record_id: RecordId, values: Mapping[str, object]) -> None:
        """Change some fields of a record."""
        if not values:
            return
        table = self._schema.tables[ds.name]
        await self._conn.execute(
            update(table)
            .where(table.c.id == record_id)
            .values(row_values(ds, values, self._phi, record_id))
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
        pairs = await fetch_links(self._conn, self._schema, ds, link, [record_id])
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
        for chunk in chunks(list(targets)):
            await self._conn.execute(
                delete(jt).where(jt.c[join.mine] == record_id, jt.c[join.other].in_(chunk))
            )

    async def missing(self, ds: Dataset, ids: Sequence[RecordId]) -> list[RecordId]:
        """Which of ``ids`` are not records of ``ds``."""
        table = self._schema.tables[ds.name]
        found: set[int] = set()
        for chunk in chunks(list(ids)):
            found.update(
                (
                    await self._conn.execute(select(table.c.id).where(table.c.id.in_(chunk)))
                ).scalars()
            )
        return [i for i in ids if i not in found]

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records by id as this transaction sees them (missing ones are left out)."""
        return await fetch_many(self._conn, ds, self._schema.tables[ds.name], ids, self._phi)

    async def find_many_by_key(
        self, ds: Dataset, keys: Sequence[Mapping[str, object]]
    ) -> list[Record]:
        """The records whose key fields equal one of ``keys`` (one ``IN`` list per 500 keys)."""
        if not keys:
            return []
        table = self._schema.tables[ds.name]
        names = list(keys[0])
        phi = self._phi
        cols = [key_column(ds, table, n, phi) for n in names]
        target: Any = cols[0] if len(cols) == 1 else tuple_(*cols)
        out: list[Record] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            wanted: list[Any] = [
                key_value(ds, names[0], key[names[0]], phi)
                if len(cols) == 1
                else tuple(key_value(ds, n, key[n], phi) for n in names)
                for key in chunk
            ]
            rows = await self._conn.execute(select(table).where(target.in_(wanted)))
            out.extend(record_of(ds, row, phi) for row in rows.mappings())
        return out

    async def insert_many(
        self, ds: Dataset, rows: Sequence[Mapping[str, object]]
    ) -> list[RecordId]:
        """Insert records with one batched ``INSERT … RETURNING id``; ids in row order."""
        if not rows:
            return []
        table = self._schema.tables[ds.name]
        names = tuple(rows[0])
        plain = plain_columns(ds, names, self._phi)
        if plain is not None and all(tuple(r) == names for r in rows):
            # One shape, no PHI (message tracking's bulk rows): columns worked out once,
            # and on SQLite one prepared multi-row statement per page (bulk_insert.py).
            if self._conn.dialect.name == "sqlite":
                found = await self._schema.bulk.insert(self._conn, table, plain, rows)
                assert len(found) == len(rows), "INSERT … RETURNING returned a wrong number"
                return [RecordId(i) for i in found]
            full = [dict(zip(plain, r.values(), strict=True)) for r in rows]
        else:
            params = [row_values(ds, r, self._phi) for r in rows]
            columns = list(dict.fromkeys(c for p in params for c in p))
            full = [{c: p.get(c) for c in columns} for p in params]
        # One multi-row INSERT … VALUES … RETURNING id per page of rows. Both databases
        # insert the rows of a VALUES list in order and take each id from an increasing
        # sequence (SQLite's AUTOINCREMENT, PostgreSQL's serial), so the ids sorted
        # ascending are the rows' ids in row order — the assumption SQLAlchemy's own
        # "implicit sentinel" for autoincrement keys makes. (Asking SQLAlchemy to sort
        # by parameter order makes it fall back to one INSERT per row on SQLite.)
        result = await self._conn.execute(self._schema.inserts[ds.name], full)
        ids = sorted(RecordId(int(i)) for i in result.scalars().all())
        assert len(ids) == len(rows), "INSERT … RETURNING returned a wrong number of ids"
        if self._phi is not None and ds.has_phi:
            await self._seal_inserted(ds, table, list(zip(ids, rows, strict=True)))
        return ids

    async def _seal_inserted(
        self, ds: Dataset, table: Table, rows: Sequence[tuple[RecordId, Mapping[str, object]]]
    ) -> None:
        """Seal the PHI values of just inserted rows (their ids are in the associated data)."""
        phi = self._phi
        assert phi is not None
        await self._update_rows(
            table, ((rid, sealed_values(ds, values, phi, rid)) for rid, values in rows)
        )

    async def update_many(
        self, ds: Dataset, changes: Sequence[tuple[RecordId, Mapping[str, object]]]
    ) -> None:
        """Change records with one ``executemany`` per set of changed columns."""
        table = self._schema.tables[ds.name]
        await self._update_rows(
            table, ((rid, row_values(ds, values, self._phi, rid)) for rid, values in changes)
        )

    async def _update_rows(
        self, table: Table, rows: Iterable[tuple[RecordId, Mapping[str, object]]]
    ) -> None:
        """Write column values by record id: one ``executemany`` per set of columns."""
        groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for record_id, row in rows:
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
        unique = list(dict.fromkeys(pairs))
        if not unique:
            return
        if self._conn.dialect.name == "sqlite":  # one prepared multi-row INSERT per page
            columns = (join.mine, join.other)
            await self._schema.bulk.insert_pairs(self._conn, join.table, columns, unique)
            return
        rows = [{join.mine: a, join.other: b} for a, b in unique]
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
