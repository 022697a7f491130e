"""Rows of the dataset tables: records from rows, and the reads the store and writer share.

:mod:`carewire.storage.datasets` reads through these both in its own read
connections and inside write transactions (which see their own writes), so
each takes the connection. Columns are named as
:mod:`carewire.storage.dataset_tables` generates them: a to-one link ``room``
is the column ``room_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, Text, and_, literal_column, not_, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    Link,
    Record,
    RecordId,
    holds_reference,
)
from carewire.datasets.query import Filter, FilterOp, phi_refusal
from carewire.errors import ValidationError
from carewire.storage.columns import EncryptedText
from carewire.storage.dataset_phi import PhiCodec
from carewire.storage.dataset_tables import (
    DatasetSchema,
    index_column,
    ref_column,
    sealed_column,
)

CHUNK = 500  # ids per IN (...) list


def record_of(ds: Dataset, row: RowMapping, phi: PhiCodec | None = None) -> Record:
    """The record a table row holds (PHI values opened with ``phi``)."""
    values: dict[str, object] = {a.name: row[a.name] for a in ds.attributes}
    if phi is not None:
        for attr in ds.attributes:
            if attr.is_phi:
                sealed = row[sealed_column(attr.name)]
                if sealed is not None:
                    values[attr.name] = phi.open(ds.name, attr, row["id"], sealed)
    for link in ds.links:
        if holds_reference(ds.name, link):
            values[link.name] = row[ref_column(link.name)]
    return Record(dataset=ds.name, id=RecordId(row["id"]), values=values)


def row_values(
    ds: Dataset,
    values: Mapping[str, object],
    phi: PhiCodec | None = None,
    record_id: int | None = None,
) -> dict[str, object]:
    """Record values by column name (to-one links as their ``<link>_id`` column).

    A PHI attribute's value (with ``phi``) goes to its blind index, and,
    when ``record_id`` is known, sealed to its sealed column; its typed
    column is set NULL.
    """
    out: dict[str, object] = {}
    for name, value in values.items():
        if ds.link(name) is not None:
            out[ref_column(name)] = value
            continue
        attr = ds.attribute(name)
        if phi is not None and attr is not None and attr.is_phi:
            out[name] = None
            out[index_column(name)] = phi.index(ds.name, attr, value)
            if record_id is not None:
                out[sealed_column(name)] = phi.seal(ds.name, attr, record_id, value)
            continue
        out[name] = value
    return out


def plain_columns(
    ds: Dataset, names: Sequence[str], phi: PhiCodec | None
) -> tuple[str, ...] | None:
    """The column of each of ``names`` when none of them is PHI (None: use :func:`row_values`).

    Rows with these fields, in this order, are then ``dict(zip(columns, row.values()))``.
    """
    out: list[str] = []
    for name in names:
        if ds.link(name) is not None:
            out.append(ref_column(name))
            continue
        attr = ds.attribute(name)
        if phi is not None and attr is not None and attr.is_phi:
            return None
        out.append(name)
    return tuple(out)


def sealed_values(
    ds: Dataset, values: Mapping[str, object], phi: PhiCodec, record_id: int
) -> dict[str, object]:
    """The sealed columns of the PHI values among ``values`` (written once the id is known)."""
    out: dict[str, object] = {}
    for attr in ds.attributes:
        if attr.is_phi and attr.name in values:
            out[sealed_column(attr.name)] = phi.seal(ds.name, attr, record_id, values[attr.name])
    return out


def key_column(ds: Dataset, table: Table, name: str, phi: PhiCodec | None) -> ColumnElement[Any]:
    """The column a key lookup of field ``name`` compares (a PHI attribute's blind index)."""
    if ds.link(name) is not None:
        return table.c[ref_column(name)]
    attr = ds.attribute(name)
    if phi is not None and attr is not None and attr.is_phi:
        return table.c[index_column(name)]
    return table.c[name]


def key_value(ds: Dataset, name: str, value: object, phi: PhiCodec | None) -> object:
    """The value a key lookup of field ``name`` compares (a PHI value's blind index)."""
    attr = ds.attribute(name)
    if phi is not None and attr is not None and attr.is_phi:
        return phi.index(ds.name, attr, value)
    return value


def chunks(ids: Sequence[RecordId]) -> list[Sequence[RecordId]]:
    """``ids`` cut into lists short enough for one ``IN (...)`` each."""
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def fetch_many(
    conn: AsyncConnection,
    ds: Dataset,
    table: Table,
    ids: Sequence[RecordId],
    phi: PhiCodec | None = None,
) -> dict[RecordId, Record]:
    """Records by id (missing ones are left out)."""
    out: dict[RecordId, Record] = {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        rows = await conn.execute(select(table).where(table.c.id.in_(chunk)))
        for row in rows.mappings():
            rec = record_of(ds, row, phi)
            out[rec.id] = rec
    return out


async def fetch_by_key(
    conn: AsyncConnection,
    ds: Dataset,
    table: Table,
    key: Mapping[str, object],
    phi: PhiCodec | None = None,
) -> Record | None:
    """The record whose key fields equal ``key`` (a None matches NULL)."""
    conds = []
    for name, value in key.items():
        col = key_column(ds, table, name, phi)
        wanted = key_value(ds, name, value, phi)
        conds.append(col.is_(None) if wanted is None else col == wanted)
    row = (await conn.execute(select(table).where(*conds).limit(1))).mappings().first()
    return None if row is None else record_of(ds, row, phi)


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


def condition(
    ds: Dataset, table: Table, f: Filter, phi: PhiCodec | None = None
) -> ColumnElement[bool]:
    """The SQL condition of one (typed) filter."""
    attr = ds.attribute(f.field)
    if phi is not None and attr is not None and attr.is_phi:
        return phi_condition(ds, table, attr, f, phi)
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


def phi_condition(
    ds: Dataset, table: Table, attr: Attribute, f: Filter, phi: PhiCodec
) -> ColumnElement[bool]:
    """A filter on a PHI attribute, through its blind index (equality only).

    Raises:
        ValidationError: An operator that needs the value itself (ranges, ``contains``).
    """
    index, sealed = table.c[index_column(attr.name)], table.c[sealed_column(attr.name)]
    match f.op:
        case FilterOp.EQ:
            return (
                sealed.is_(None) if f.value is None else index == phi.index(ds.name, attr, f.value)
            )
        case FilterOp.NE:
            if f.value is None:
                return sealed.is_not(None)
            return index.is_(None) | (index != phi.index(ds.name, attr, f.value))
        case FilterOp.IN:
            assert isinstance(f.value, list | tuple)
            return index.in_([phi.index(ds.name, attr, v) for v in f.value if v is not None])
        case FilterOp.EMPTY | FilterOp.NOT_EMPTY:
            empty: ColumnElement[bool] = sealed.is_(None)
            if attr.type is AttrType.STRING:
                empty = or_(empty, index == phi.index(ds.name, attr, ""))
            return empty if f.op is FilterOp.EMPTY else not_(empty)
        case _:
            raise ValidationError(f"{ds.name}.{attr.name} {phi_refusal(f.op.value)}")
