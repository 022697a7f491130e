"""Dataset tables generated from their definitions: names, columns, and the DDL to add them.

Theory of operation: each dataset ``X`` is a table ``ds_x`` with an integer
``id``, one nullable column per attribute (``required`` is enforced by the
service, so adding a column never needs a default), one ``<link>_id``
foreign key per n:1 link (and per 1:1 link on the side that owns it, see
:func:`~carewire.datasets.model.holds_reference`) and a unique constraint
over the key columns. Each m:n pair shares one join table ``dsj_x_<link>``
(``left_id`` → the owning side, ``right_id`` → the other). 1:n links have no
column: they are the reverse of an n:1 and are read from the other table.

Attributes holding message content (:data:`ENCRYPTED_ATTRIBUTES`) are
:class:`~carewire.storage.columns.EncryptedText` columns when the schema is
given a keyring: written sealed, read in clear, never compared in SQL.

:func:`create_missing` creates what is missing and never drops; an existing
column whose type no longer matches its definition is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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
    insert,
    inspect,
    text,
)
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.types import TypeEngine

from carewire.datasets.definitions import DefinitionError
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    Link,
    holds_reference,
    owns_join_table,
)
from carewire.security.envelope import Keyring
from carewire.storage.bulk_insert import PlainInserts
from carewire.storage.columns import EncryptedText
from carewire.storage.tables import NAMING_CONVENTION, UTCDateTime

_ID = BigInteger().with_variant(Integer(), "sqlite")
_MAX_IDENT = 63  # PostgreSQL's identifier length

#: (dataset, attribute) pairs encrypted at rest: the bodies and raw XML of
#: messages (the archive, room history and alert texts all live there) and
#: conversations' topics (a room's subject).
ENCRYPTED_ATTRIBUTES: frozenset[tuple[str, str]] = frozenset(
    {("MESSAGES", "message"), ("MESSAGES", "elements"), ("CONVERSATIONS", "topic")}
)


def is_encrypted(ds: Dataset, attr: Attribute) -> bool:
    """Whether ``attr`` of ``ds`` is stored encrypted."""
    return (ds.name, attr.name) in ENCRYPTED_ATTRIBUTES


def sealed_column(attr: str) -> str:
    """The text column holding a PHI attribute's sealed value (``mrn`` → ``mrn__phi``).

    Attribute names never contain ``__``, so these names cannot clash with one.
    """
    return _ident(f"{attr}__phi")


def index_column(attr: str) -> str:
    """The column holding a PHI attribute's blind index (``mrn`` → ``mrn__bi``)."""
    return _ident(f"{attr}__bi")


def phi_key_index_name(table: str) -> str:
    """The unique index over a key that includes PHI attributes (by their blind indexes)."""
    return _ident(f"uq_{table}_key_bi")


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


def _attribute_column(ds: Dataset, attr: Attribute, keyring: Keyring | None) -> Column[Any]:
    if keyring is not None and attr.type is AttrType.STRING and is_encrypted(ds, attr):
        aad = f"{ds.name}.{attr.name}".encode()
        return Column(attr.name, EncryptedText(keyring, aad), nullable=True)
    return Column(attr.name, _column_type(attr.type), nullable=True)


def _phi_columns(attr: Attribute) -> list[Any]:
    """The sealed value and blind index columns of a PHI attribute.

    Like the plain column of any attribute outside the key, a blind index
    outside the key has no SQL index of its own (each would cost every
    write of the attribute); a key's are covered by the key's unique index.
    """
    return [
        Column(sealed_column(attr.name), Text(), nullable=True),
        Column(index_column(attr.name), Text(), nullable=True),
    ]


def _reference_column(link: Link) -> Column[Any]:
    return Column(
        ref_column(link.name), _ID, ForeignKey(f"{table_name(link.target)}.id"), nullable=True
    )


def _reference_index(table: str, link: Link) -> Index:
    col = ref_column(link.name)
    unique = link.cardinality is Cardinality.ONE_TO_ONE
    return Index(_ident(f"ix_{table}__{col}"), col, unique=unique)


def _leading_key_column(ds: Dataset) -> str | None:
    """The first column of the dataset's unique key (key attributes, then key links)."""
    for attr in ds.attributes:
        if attr.is_key:
            return attr.name
    for link in ds.links:
        if link.is_key and holds_reference(ds.name, link):
            return ref_column(link.name)
    return None


def _is_covered(link: Link, leading: str | None) -> bool:
    """Whether the key's unique index already serves look-ups by this link's column.

    A B-tree on (a, b) finds rows by ``a`` alone, so a separate index on ``a``
    only costs one more insert per row (MESSAGE_DELIVERIES: one per delivery).
    A one-to-one link keeps its own index: it is what makes the link unique.
    """
    return link.cardinality is not Cardinality.ONE_TO_ONE and ref_column(link.name) == leading


class JoinSide:
    """One side's view of a join table.

    Attributes:
        table: The join table.
        mine: The column holding this side's record ids.
        other: The column holding the linked records' ids.
    """

    __slots__ = ("mine", "other", "table")

    def __init__(self, table: Table, mine: str, other: str) -> None:
        self.table, self.mine, self.other = table, mine, other


class DatasetSchema:
    """SQLAlchemy tables for one complete set of definitions.

    Attributes:
        metadata: The tables' metadata (not the migrated schema's).
        datasets: The definitions, by name.
        tables: Each dataset's table, by dataset name.
        joins: Each m:n link's join table, by (dataset, link), from both sides.
    """

    def __init__(self, datasets: Sequence[Dataset], keyring: Keyring | None = None) -> None:
        self.keyring = keyring
        self.metadata = MetaData(naming_convention=NAMING_CONVENTION)
        self.datasets: dict[str, Dataset] = {ds.name: ds for ds in datasets}
        self.tables: dict[str, Table] = {}
        self.joins: dict[tuple[str, str], JoinSide] = {}
        # ``INSERT … RETURNING id`` per dataset, built once (bulk writers insert thousands a second)
        self.inserts: dict[str, ReturningInsert[Any]] = {}
        self.bulk = PlainInserts()  # the same, prepared by hand for plain rows on SQLite
        for ds in datasets:
            self.tables[ds.name] = self._table(ds)
            self.inserts[ds.name] = insert(self.tables[ds.name]).returning(
                self.tables[ds.name].c.id
            )
        for ds in datasets:
            for link in ds.links:
                if owns_join_table(ds.name, link):
                    self._join_table(ds, link)

    def _table(self, ds: Dataset) -> Table:
        name = table_name(ds.name)
        columns: list[Any] = [Column("id", _ID, primary_key=True, autoincrement=True)]
        key: list[str] = []
        sealed_key: list[str] = []
        for attr in ds.attributes:
            columns.append(_attribute_column(ds, attr, self.keyring))
            if self.keyring is not None and attr.is_phi:
                columns += _phi_columns(attr)
            if attr.is_key:
                key.append(attr.name)
                is_sealed = self.keyring is not None and attr.is_phi
                sealed_key.append(index_column(attr.name) if is_sealed else attr.name)
        leading = _leading_key_column(ds)
        for link in ds.links:
            if holds_reference(ds.name, link):
                col = ref_column(link.name)
                columns.append(_reference_column(link))
                if not _is_covered(link, leading):
                    columns.append(_reference_index(name, link))
                if link.is_key:
                    key.append(col)
                    sealed_key.append(col)
        if key:
            columns.append(UniqueConstraint(*key, name=_ident(f"uq_{name}_key")))
        if sealed_key != key:
            # The plain key columns of PHI attributes stay NULL: the blind
            # indexes keep the key unique instead.
            columns.append(
                Index(phi_key_index_name(name), *sealed_key, unique=True, info={"phi": True})
            )
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
        self.joins[(ds.name, link.name)] = JoinSide(table, "left_id", "right_id")
        self.joins[(link.target, link.reverse)] = JoinSide(table, "right_id", "left_id")


def create_missing(conn: Connection, schema: DatasetSchema) -> dict[str, set[str]]:
    """Create missing tables, then missing columns; refuse type changes first.

    Returns the columns each table that existed had before (the PHI
    conversion, :func:`carewire.storage.dataset_phi.convert`, needs them).

    Runs inside the transaction. Everything is checked before the first DDL
    statement, so a refused change leaves no trace even on SQLite (where
    ``ALTER TABLE`` is not rolled back by the driver). New tables come before
    new columns, whose foreign keys may point at them.
    """
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    missing: list[tuple[Table, Column[Any], Link | None]] = []
    problems: list[str] = []
    before: dict[str, set[str]] = {}
    for ds_name, table in schema.tables.items():
        if table.name not in existing:
            continue
        have = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        before[table.name] = set(have)
        ds = schema.datasets[ds_name]
        for column in table.columns:
            attr = ds.attribute(column.name)
            if column.name not in have:
                link = next((ln for ln in ds.links if ref_column(ln.name) == column.name), None)
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
    for ds_name, table in schema.tables.items():
        if table.name in existing:
            _add_phi_indexes(conn, inspector, table)
            _drop_covered_indexes(conn, inspector, table, schema.datasets[ds_name])
    return before


def _add_phi_indexes(conn: Connection, inspector: Any, table: Table) -> None:
    """Create the blind-index indexes of attributes marked PHI since the table was made."""
    wanted = [ix for ix in table.indexes if ix.info.get("phi")]
    if not wanted:
        return
    have = {ix["name"] for ix in inspector.get_indexes(table.name)}
    for index in wanted:
        if index.name not in have:
            index.create(conn)


def _drop_covered_indexes(conn: Connection, inspector: Any, table: Table, ds: Dataset) -> None:
    """Drop a link's own index where the stored unique key already starts with its column.

    Tables made before such indexes were left out keep them otherwise; the
    stored table's own unique constraints decide, not the definition's key.
    """
    key_start = _leading_key_column(ds)
    candidates = {
        str(_reference_index(table.name, ln).name): ref_column(ln.name)
        for ln in ds.links
        if holds_reference(ds.name, ln) and _is_covered(ln, key_start)
    }
    if not candidates:
        return
    indexes = inspector.get_indexes(table.name)
    have = {ix["name"] for ix in indexes}
    uniques = [uc["column_names"] for uc in inspector.get_unique_constraints(table.name)]
    uniques += [ix["column_names"] for ix in indexes if ix.get("unique")]
    leading = {cols[0] for cols in uniques if len(cols) > 1 and cols[0] is not None}
    preparer = conn.dialect.identifier_preparer
    for name, column in candidates.items():
        if name in have and column in leading:
            conn.execute(text(f"DROP INDEX {preparer.quote(name)}"))


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
