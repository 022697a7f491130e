"""PHI attributes of the dataset tables: sealed values, blind indexes and the conversion pass.

Theory of operation: an attribute marked PHI (``Attribute.is_phi``) keeps
its typed column (``mrn``), which stays NULL, and gains two text columns
(:func:`~carewire.storage.dataset_tables.sealed_column`,
:func:`~carewire.storage.dataset_tables.index_column`):

- ``mrn__phi``: the value in its canonical text form (:func:`canonical`),
  sealed with AES-256-GCM (``Keyring.seal_text``); the associated data names
  the dataset, the attribute and the record id (``PATIENTS.mrn|42``), so a
  value copied to another record, attribute or dataset no longer opens;
- ``mrn__bi``: ``Keyring.blind_index`` of the canonical text in the context
  ``PATIENTS.mrn``; equality filters, ``in`` lists and key lookups compare
  it instead of the value. It is indexed (unique over the key when the
  attribute is part of it).

A record id exists only once the row is inserted, so an insert writes the
blind index first and seals in a second statement (one ``executemany`` for
a batch of rows), inside the same transaction.

:func:`convert` runs inside :meth:`~carewire.storage.datasets.SqlDatasetStore.apply`,
in the transaction that saves the definitions: every plain value of a PHI
attribute is sealed and indexed (its typed column set NULL); every sealed
value of an attribute no longer PHI is opened back into its typed column.
So the definitions and the rows agree whenever a transaction commits, and
an interrupted conversion is rolled back and done again at the next start.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, Connection, Table, bindparam, column, select, table, update
from sqlalchemy.types import Text

from carewire.datasets.model import Attribute, AttrType, Dataset
from carewire.security.envelope import Keyring
from carewire.storage.dataset_tables import DatasetSchema, index_column, sealed_column

log = logging.getLogger(__name__)

#: Rows converted per statement by :func:`convert`.
BATCH = 500


def canonical(kind: AttrType, value: object) -> str:
    """The text a typed value is sealed and indexed as (the same value, the same text)."""
    if kind is AttrType.BOOLEAN:
        return "true" if value else "false"
    if kind is AttrType.DATETIME and isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if kind is AttrType.DATE and isinstance(value, date):
        return value.isoformat()
    return str(value)


def parse(kind: AttrType, text: str) -> object:
    """The typed value :func:`canonical` wrote as ``text``."""
    match kind:
        case AttrType.BOOLEAN:
            return text == "true"
        case AttrType.INTEGER:
            return int(text)
        case AttrType.DATE:
            return date.fromisoformat(text)
        case AttrType.DATETIME:
            return datetime.fromisoformat(text).astimezone(UTC)
        case _:
            return text


def context(dataset: str, attr: str) -> str:
    """The blind-index context of one attribute (equal values match within it only)."""
    return f"{dataset}.{attr}"


def aad(dataset: str, attr: str, record_id: int) -> bytes:
    """The associated data a value is sealed with: where it lives, down to the record."""
    return f"{dataset}.{attr}|{record_id}".encode()


class PhiCodec:
    """Seals, opens and indexes PHI values with one keyring."""

    __slots__ = ("keyring",)

    def __init__(self, keyring: Keyring) -> None:
        """Use ``keyring`` for every value."""
        self.keyring = keyring

    def index(self, dataset: str, attr: Attribute, value: object) -> str | None:
        """The blind index of ``value`` (None for None)."""
        if value is None:
            return None
        return self.keyring.blind_index(
            canonical(attr.type, value), context=context(dataset, attr.name)
        )

    def seal(self, dataset: str, attr: Attribute, record_id: int, value: object) -> str | None:
        """``value`` sealed for record ``record_id`` (None for None)."""
        if value is None:
            return None
        return self.keyring.seal_text(
            canonical(attr.type, value), aad=aad(dataset, attr.name, record_id)
        )

    def open(self, dataset: str, attr: Attribute, record_id: int, sealed: str) -> object:
        """The typed value :meth:`seal` sealed.

        Raises:
            EncryptionError: It does not open (a key not loaded, or the value
                was altered or moved to another record).
        """
        text = self.keyring.open_text(sealed, aad=aad(dataset, attr.name, record_id))
        return parse(attr.type, text)


def _clause(tbl: Table, attr: Attribute) -> Any:
    """A light table with the columns one attribute's conversion touches."""
    return table(
        tbl.name,
        column("id"),
        column(attr.name, tbl.c[attr.name].type),
        column(sealed_column(attr.name), Text()),
        column(index_column(attr.name), Text()),
    )


def convert(
    conn: Connection, schema: DatasetSchema, columns: dict[str, set[str]]
) -> dict[str, int]:
    """Seal the plain values of PHI attributes and open those of attributes no longer PHI.

    Args:
        conn: The transaction's connection (the one that saves the definitions).
        schema: The new definitions' schema (with its keyring).
        columns: The columns each existing table had before this change, by table.

    Returns:
        How many values were converted, by ``DATASET.attribute`` (none listed when none were).
    """
    if schema.keyring is None:
        return {}
    codec = PhiCodec(schema.keyring)
    done: dict[str, int] = {}
    for name, tbl in schema.tables.items():
        have = columns.get(tbl.name)
        if have is None:  # a new table: nothing to convert
            continue
        ds = schema.datasets[name]
        for attr in ds.attributes:
            if attr.is_phi:
                n = _seal_all(conn, codec, ds, tbl, attr)
            elif sealed_column(attr.name) in have:
                n = _open_all(conn, codec, ds, tbl, attr)
            else:
                continue
            if n:
                done[f"{ds.name}.{attr.name}"] = n
                log.info("%s.%s: %d values converted for the PHI flag", ds.name, attr.name, n)
    return done


def _seal_all(conn: Connection, codec: PhiCodec, ds: Dataset, tbl: Table, attr: Attribute) -> int:
    t = _clause(tbl, attr)
    plain, sealed, index = (
        t.c[attr.name],
        t.c[sealed_column(attr.name)],
        t.c[index_column(attr.name)],
    )
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_rid"))
        .values({plain: None, sealed: bindparam("_sealed"), index: bindparam("_index")})
    )
    total = 0
    while True:
        rows = conn.execute(
            select(t.c.id, plain).where(plain.is_not(None)).order_by(t.c.id).limit(BATCH)
        ).all()
        if not rows:
            return total
        params = [
            {
                "_rid": rid,
                "_sealed": codec.seal(ds.name, attr, rid, value),
                "_index": codec.index(ds.name, attr, value),
            }
            for rid, value in rows
        ]
        conn.execute(stmt, params)
        total += len(rows)


def _open_all(conn: Connection, codec: PhiCodec, ds: Dataset, tbl: Table, attr: Attribute) -> int:
    t = _clause(tbl, attr)
    plain: Column[Any] = t.c[attr.name]
    sealed, index = t.c[sealed_column(attr.name)], t.c[index_column(attr.name)]
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_rid"))
        .values({plain: bindparam("_value"), sealed: None, index: None})
    )
    total = 0
    while True:
        rows = conn.execute(
            select(t.c.id, sealed).where(sealed.is_not(None)).order_by(t.c.id).limit(BATCH)
        ).all()
        if not rows:
            return total
        params = [
            {"_rid": rid, "_value": codec.open(ds.name, attr, rid, text)} for rid, text in rows
        ]
        conn.execute(stmt, params)
        total += len(rows)
