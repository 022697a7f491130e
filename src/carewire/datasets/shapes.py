"""Row shapes: how rows with one set of fields are checked, worked out once per shape.

Theory of operation: a bulk writer (message tracking) creates thousands of
rows with the same few fields, whose values already have the right Python
types. :class:`Shapes` works out, once per dataset and list of field names,
which attribute or link each field is, which exact type lets a value through
unchanged and which fields must not be empty. :meth:`Shape.fast_row` then
checks a row with one type test per value.

The fast path only ever takes the values the generic path
(:meth:`carewire.datasets.service.Batch._prepare` and
:func:`carewire.datasets.checks.require`) would take unchanged: a value of any
other type (text for a number, an int for a boolean, a time not in UTC, …), an
unknown field, or a row without a required value makes :meth:`Shape.fast_row`
return None, and the caller gives that row to the generic path, which converts
it or refuses it with its usual error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

from carewire.datasets.model import AttrType, Cardinality, Dataset, RecordId, holds_reference
from carewire.datasets.values import INT_MAX, INT_MIN, is_empty

#: A value check: True when the value is stored as it is.
Check = Callable[[object], bool]


def _is_text(value: object) -> bool:
    return type(value) is str


def _is_integer(value: object) -> bool:
    return type(value) is int and INT_MIN <= value <= INT_MAX


def _is_boolean(value: object) -> bool:
    return type(value) is bool


def _is_date(value: object) -> bool:
    return type(value) is date


def _is_utc_time(value: object) -> bool:
    # UTC itself: no offset can push the stored time out of the calendar.
    return type(value) is datetime and value.tzinfo is UTC


def _is_record_id(value: object) -> bool:
    return type(value) is int and 0 < value <= INT_MAX


def _is_record_ids(value: object) -> bool:
    return type(value) is list and all(_is_record_id(v) for v in value)


_ATTRIBUTE_CHECKS: dict[AttrType, Check] = {
    AttrType.STRING: _is_text,
    AttrType.INTEGER: _is_integer,
    AttrType.BOOLEAN: _is_boolean,
    AttrType.DATE: _is_date,
    AttrType.DATETIME: _is_utc_time,
}


@dataclass(frozen=True, slots=True)
class Shape:
    """Rows of one dataset with one list of fields: their checks, worked out once.

    Attributes:
        dataset: The definition the shape was worked out for.
        fields: The rows' field names, in their order.
        columns: Attributes and to-one links: (name, check of a non-None value).
        many: m:n links: their names (a list of record ids each).
        required: Fields among ``columns`` that must not be empty.
    """

    dataset: Dataset
    fields: tuple[str, ...]
    columns: tuple[tuple[str, Check], ...]
    many: tuple[str, ...]
    required: tuple[str, ...]

    def fast_row(
        self, values: Mapping[str, object]
    ) -> tuple[dict[str, object], dict[str, list[RecordId]]] | None:
        """The row's column values and m:n targets, or None: the generic path must look."""
        row: dict[str, object] = {}
        for name, check in self.columns:
            value = values[name]
            if value is not None and not check(value):
                return None
            row[name] = value
        many: dict[str, list[RecordId]] = {}
        for name in self.many:
            targets = values[name]
            if not _is_record_ids(targets):
                return None
            many[name] = list(cast("list[RecordId]", targets))  # checked: positive ints
        for name in self.required:
            if is_empty(row[name]):
                return None
        return row, many


def shape_for(ds: Dataset, fields: Sequence[str]) -> Shape | None:
    """The shape of rows with exactly ``fields``, or None when the fast path cannot serve it.

    None: an unknown field, a link set from the other side, or a required
    field (a required attribute or a key link) the rows do not have.
    """
    columns: list[tuple[str, Check]] = []
    many: list[str] = []
    for name in fields:
        attr = ds.attribute(name)
        if attr is not None:
            columns.append((name, _ATTRIBUTE_CHECKS[attr.type]))
            continue
        link = ds.link(name)
        if link is None:
            return None
        if holds_reference(ds.name, link):
            columns.append((name, _is_record_id))
        elif link.cardinality is Cardinality.MANY_TO_MANY:
            many.append(name)
        else:
            return None
    present = set(fields)
    required = [a.name for a in ds.attributes if a.must_have_value]
    required += [ln.name for ln in ds.key_links]
    if not present.issuperset(required):
        return None
    return Shape(
        dataset=ds,
        fields=tuple(fields),
        columns=tuple(columns),
        many=tuple(many),
        required=tuple(required),
    )


class Shapes:
    """The shapes seen so far, by dataset name and fields (a new definition starts over)."""

    def __init__(self, limit: int = 256) -> None:
        self._known: dict[tuple[str, tuple[str, ...]], tuple[Dataset, Shape | None]] = {}
        self._limit = limit

    def get(self, ds: Dataset, fields: tuple[str, ...]) -> Shape | None:
        """The shape of rows of ``ds`` with ``fields`` (None: use the generic path)."""
        key = (ds.name, fields)
        known = self._known.get(key)
        if known is not None and known[0] is ds:
            return known[1]
        shape = shape_for(ds, fields)
        if len(self._known) >= self._limit:
            self._known.clear()  # odd callers with ever new field lists: never grow unbounded
        self._known[key] = (ds, shape)
        return shape
