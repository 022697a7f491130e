"""The dataset model: datasets, typed attributes and links, records and change events.

A *dataset* is a named collection of records with typed *attributes* and
*links* to other datasets. Every link has a reverse on the target dataset
(``BEDS.room`` n:1 ↔ ``ROOMS.beds`` 1:n), so paths can walk both ways. Key
attributes, and links marked as key, together form a dataset's unique key
(a bed is identified by its number *within its room*).

Everything here is plain, frozen data: no I/O. :mod:`.definitions` loads and
validates definitions, :mod:`.registry` keeps the live set, and
:mod:`.service` writes records.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType

DatasetName = NewType("DatasetName", str)
RecordId = NewType("RecordId", int)

#: Dataset names: upper case, digits and underscores (``CALL_LOG_HISTORY``).
DATASET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,47}$")
#: Attribute and link names: lower case, digits and underscores (``room_number``).
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Names a dataset may not use for attributes or links (columns of every table, path words).
RESERVED_FIELDS = frozenset({"id"})


class AttrType(enum.StrEnum):
    """An attribute's type, spelt as in the dataset tables."""

    STRING = "String"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    DATE = "Date"
    DATETIME = "Date/Time"


class Cardinality(enum.StrEnum):
    """A link's order, seen from the dataset that declares it."""

    ONE_TO_ONE = "1:1"
    ONE_TO_MANY = "1:n"
    MANY_TO_ONE = "n:1"
    MANY_TO_MANY = "m:n"

    @property
    def reverse(self) -> Cardinality:
        """The same link seen from the other side."""
        return _REVERSE[self]

    @property
    def is_to_many(self) -> bool:
        """Whether following the link can reach more than one record."""
        return self in (Cardinality.ONE_TO_MANY, Cardinality.MANY_TO_MANY)


_REVERSE = {
    Cardinality.ONE_TO_ONE: Cardinality.ONE_TO_ONE,
    Cardinality.ONE_TO_MANY: Cardinality.MANY_TO_ONE,
    Cardinality.MANY_TO_ONE: Cardinality.ONE_TO_MANY,
    Cardinality.MANY_TO_MANY: Cardinality.MANY_TO_MANY,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """A typed value of every record of a dataset.

    Attributes:
        name: Lower-case name (``room_number``).
        type: The value type.
        is_key: Part of the dataset's unique key (implies required).
        is_required: A record must have a value.
        description: What it stores, for people.
        is_phi: Protected health information: stored encrypted, compared
            only for equality (through a keyed blind index), and every read
            of a record holding it is audited (docs/phi.md).
    """

    name: str
    type: AttrType
    is_key: bool = False
    is_required: bool = False
    description: str = ""
    is_phi: bool = False

    @property
    def must_have_value(self) -> bool:
        """Key attributes are required even where the table says N/A."""
        return self.is_key or self.is_required


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A relation from one dataset to another, with its name on the other side.

    Attributes:
        name: The link's name on this dataset (``room``).
        target: The dataset it points to.
        reverse: The link's name on the target (``beds``).
        cardinality: The order seen from this dataset.
        is_key: The linked record is part of this dataset's key (to-one links only).
        is_reverse_key: This dataset is part of the target's key through the reverse.
        description: What it relates, for people.
    """

    name: str
    target: DatasetName
    reverse: str
    cardinality: Cardinality
    is_key: bool = False
    is_reverse_key: bool = False
    description: str = ""

    @property
    def is_to_many(self) -> bool:
        """Whether following the link can reach more than one record."""
        return self.cardinality.is_to_many


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """A dataset definition.

    Attributes:
        name: Upper-case name (``BEDS``).
        description: What it stores.
        attributes: Its attributes, in display order.
        links: Its links, in display order.
        is_builtin: Shipped with Carewire (as opposed to created by an administrator).
    """

    name: DatasetName
    description: str = ""
    attributes: tuple[Attribute, ...] = ()
    links: tuple[Link, ...] = ()
    is_builtin: bool = False
    # By name, built once: every validated value asks for its attribute or link.
    _attributes_by_name: dict[str, Attribute] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _links_by_name: dict[str, Link] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for attr in self.attributes:
            self._attributes_by_name.setdefault(attr.name, attr)
        for link in self.links:
            self._links_by_name.setdefault(link.name, link)

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name``, if any."""
        return self._attributes_by_name.get(name)

    def link(self, name: str) -> Link | None:
        """The link called ``name``, if any."""
        return self._links_by_name.get(name)

    @property
    def key_attributes(self) -> tuple[Attribute, ...]:
        """Attributes that are part of the key."""
        return tuple(a for a in self.attributes if a.is_key)

    @property
    def key_links(self) -> tuple[Link, ...]:
        """Links that are part of the key."""
        return tuple(ln for ln in self.links if ln.is_key)

    @property
    def phi_attributes(self) -> tuple[Attribute, ...]:
        """Attributes marked as protected health information."""
        return tuple(a for a in self.attributes if a.is_phi)

    @property
    def has_phi(self) -> bool:
        """Whether any attribute holds protected health information."""
        return any(a.is_phi for a in self.attributes)

    @property
    def has_key(self) -> bool:
        """Whether records have a natural key (some datasets, like histories, have none)."""
        return bool(self.key_attributes or self.key_links)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every attribute and link name."""
        return tuple(a.name for a in self.attributes) + tuple(ln.name for ln in self.links)


def holds_reference(dataset: DatasetName, link: Link) -> bool:
    """Whether records of ``dataset`` store ``link`` as a column (a foreign key).

    n:1 links always do; of a 1:1 pair exactly one side does: the link whose
    (dataset, name) sorts first.
    """
    if link.cardinality is Cardinality.MANY_TO_ONE:
        return True
    if link.cardinality is Cardinality.ONE_TO_ONE:
        return (dataset, link.name) <= (link.target, link.reverse)
    return False


def owns_join_table(dataset: DatasetName, link: Link) -> bool:
    """Whether ``link`` (m:n) names the join table shared with its reverse."""
    return link.cardinality is Cardinality.MANY_TO_MANY and (dataset, link.name) <= (
        link.target,
        link.reverse,
    )


class ChangeKind(enum.StrEnum):
    """What a write did to a record."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


#: A record's values: attribute names to values, to-one link names to record ids,
#: and (only when a write touched them) m:n link names to sorted lists of record ids.
Values = Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record as read from its dataset.

    Attributes:
        dataset: The dataset's name.
        id: The record's id (unique within the dataset).
        values: Attribute values and to-one link targets (record ids or None).
    """

    dataset: DatasetName
    id: RecordId
    values: Values = field(default_factory=dict)

    def get(self, name: str) -> object:
        """A value by name (None when unset)."""
        return self.values.get(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Who caused a write: an adapter instance, an API user, a rule chain.

    Attributes:
        adapter: Reference name of the adapter that wrote (None for people and the CLI).
        actor: Who, for the audit trail (``api:token-name``, ``cli``, ``rule:12``).
        depth: How many rule actions led to this write (0 for a write from outside).
    """

    adapter: str | None = None
    actor: str = "system"
    depth: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChanged:
    """One committed write to one record.

    Attributes:
        dataset: The dataset written.
        record_id: The record's id.
        kind: Create, update or delete.
        old: Values before the write (None for a create).
        new: Values after the write (None for a delete).
        origin: Who wrote it.
        at: When it committed (UTC).
    """

    dataset: DatasetName
    record_id: RecordId
    kind: ChangeKind
    old: Values | None
    new: Values | None
    origin: Origin
    at: datetime

    @property
    def changed(self) -> frozenset[str]:
        """Names whose value differs between ``old`` and ``new``."""
        old, new = self.old or {}, self.new or {}
        return frozenset(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
