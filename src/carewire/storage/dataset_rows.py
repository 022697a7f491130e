"""Rows of the dataset tables: records from rows, and the reads the store and writer share.

:mod:`carewire.storage.datasets` reads through these both in its own read
connections and inside write transactions (which see their own writes), so
each takes the connection. Columns are named as
:mod:`carewire.storage.dataset_tables` generates them: a to-one link ``room``
is the column ``room_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Table, Text, and_, literal_column, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from carewire.datasets.model import Cardinality, Dataset, Link, Record, RecordId, holds_reference
from carewire.datasets.query import Filter, FilterOp
from carewire.errors import ValidationError
from carewire.storage.columns import EncryptedText
from carewire.storage.dataset_tables import DatasetSchema, ref_column

CHUNK = 500  # ids per IN (...) list


def record_of(ds: Dataset, row: RowMapping) -> Record:
    """The record a table row holds."""
    values: dict[str, object] = {a.name: row[a.name] for a in ds.attributes}
    for link in ds.links:
        if holds_reference(ds.name, link):
            values[link.name] = row[ref_column(link.name)]
    return Record(dataset=ds.name, id=RecordId(row["id"]), values=values)


def row_values(ds: Dataset, values: Mapping[str, object]) -> dict[str, object]:
    """Record values by column name (to-one links as their ``<link>_id`` column)."""
    out: dict[str, object] = {}
    for name, value in values.items():
        link = ds.link(name)
        out[ref_column(name) if link is not None else name] = value
    return out


def chunks(ids: Sequence[RecordId]) -> list[Sequence[RecordId]]:
    """``ids`` cut into lists short enough for one ``IN (...)`` each."""
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def fetch_many(
    conn: AsyncConnection, ds: Dataset, table: Table, ids: Sequence[RecordId]
) -> dict[RecordId, Record]:
    """Records by id (missing ones are left out)."""
    out: dict[RecordId, Record] = {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        rows = await conn.execute(select(table).where(table.c.id.in_(chunk)))
        for row in rows.mappings():
            rec = record_of(ds, row)
            out[rec.id] = rec
    return out


async def fetch_by_key(
    conn: AsyncConnection, ds: Dataset, table: Table, key: Mapping[str, object]
) -> Record | None:
    """The record whose key fields equal ``key`` (a None matches NULL)."""
    conds = []
    for name, value in key.items():
        col = table.c[ref_column(name) if ds.link(name) else name]
        conds.append(col.is_(None) if value is None else col == value)
    row = (await conn.execute(select(table).where(*conds).limit(1))).mappings().first()
    return None if row is None else record_of(ds, row)


async def fetch_links(
    conn: AsyncConnection,
    schema: DatasetSchema,
    ds: Dataset,
    link: Link,
    ids: Sequence[RecordId],
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


def condition(ds: Dataset, table: Table, f: Filter) -> ColumnElement[bool]:
    """The SQL condition of one (typed) filter."""
    col = table.c[ref_column(f.field) if ds.link(f.field) else f.field]  # or "id"
    if isinstance(col.type, EncryptedText) and f.op not in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
        # A sealed value differs from every other sealing of the same text.
        raise ValidationError(f"{ds.name}.{f.field} is encrypted: it can only be tested for empty")
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
            if isinstance(col.type, Text | EncryptedText):
                return or_(col.is_(None), col == literal_column("''"))
            return col.is_(None)
        case FilterOp.NOT_EMPTY:
            if isinstance(col.type, Text | EncryptedText):
                return and_(col.is_not(None), col != literal_column("''"))
            return col.is_not(None)
