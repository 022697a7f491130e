"""A query checked against its dataset, with filter values in the fields' types.

The pure half of :meth:`~carewire.datasets.service.DatasetService.query`: a
:class:`~carewire.datasets.query.Query` arrives with values as the CLI and the
API read them (text, JSON); :func:`typed_query` coerces each filter value to
its attribute's type (a to-one link compares record ids) and refuses fields
that cannot be filtered or sorted on, so the store gets values it can compare.
"""

from __future__ import annotations

from typing import cast

from carewire.datasets.model import Dataset, holds_reference
from carewire.datasets.query import PHI_OPS, Filter, FilterOp, Query, phi_refusal
from carewire.datasets.values import RecordError, coerce, is_record_id


def typed_query(ds: Dataset, query: Query) -> Query:
    """``query`` with typed filter values, its sort keys checked.

    Raises:
        RecordError: A filter or sort key names an unknown field or a to-many
            link, or a value cannot be read as its field's type.
    """
    filters = tuple(typed_filter(ds, f) for f in query.filters)
    for s in query.sort:
        if s.field != "id" and s.field not in ds.field_names:
            raise RecordError(
                ds.name, f"cannot sort by unknown field {s.field!r}", code="unknown-field"
            )
        link = ds.link(s.field)
        if link is not None and not holds_reference(ds.name, link):
            raise RecordError(ds.name, f"cannot sort by the to-many link {s.field!r}")
        attr = ds.attribute(s.field)
        if attr is not None and attr.is_phi:
            raise RecordError(ds.name, phi_refusal("sort"), field=s.field, code="phi-field")
    return Query(filters=filters, sort=query.sort, offset=query.offset, limit=query.limit)


def typed_filter(ds: Dataset, f: Filter) -> Filter:
    """One filter with its value in the field's type (a list of them for ``in``).

    Raises:
        RecordError: The field is not an attribute or a to-one link, or a
            value cannot be read as its type.
    """
    if f.field == "id":  # the record id itself (paging by id: ``id:gt:1000``)
        if f.op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY, FilterOp.CONTAINS):
            raise RecordError(ds.name, f"cannot filter the record id with {f.op.value!r}")
        return _reference_filter(ds, f)
    attr = ds.attribute(f.field)
    if attr is not None and attr.is_phi and f.op not in PHI_OPS:
        # Ranges and substrings would need the values themselves: a PHI
        # attribute is stored sealed, and compared through its blind index.
        raise RecordError(ds.name, phi_refusal(f.op.value), field=f.field, code="phi-field")
    if attr is not None:
        if f.op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
            return f
        if f.op is FilterOp.CONTAINS:
            return Filter(field=f.field, op=f.op, value=str(f.value))
        if f.op is FilterOp.IN:
            items = f.value if isinstance(f.value, list | tuple) else [f.value]
            return Filter(field=f.field, op=f.op, value=[coerce(ds.name, attr, v) for v in items])
        return Filter(field=f.field, op=f.op, value=coerce(ds.name, attr, f.value))
    link = ds.link(f.field)
    if link is None or not holds_reference(ds.name, link):
        raise RecordError(
            ds.name,
            f"cannot filter on {f.field!r}: not an attribute or to-one link",
            code="unknown-field",
        )
    if f.op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
        return f
    return _reference_filter(ds, f)


def _reference_filter(ds: Dataset, f: Filter) -> Filter:
    if f.op is FilterOp.IN:
        items = f.value if isinstance(f.value, list | tuple) else [f.value]
        return Filter(field=f.field, op=f.op, value=[_record_id(ds, f.field, v) for v in items])
    return Filter(field=f.field, op=f.op, value=_record_id(ds, f.field, f.value))


def _record_id(ds: Dataset, field: str, value: object) -> int:
    try:
        number = int(cast(str, value))
        if not is_record_id(number):
            raise ValueError(number)
        return number
    except (TypeError, ValueError):
        raise RecordError(
            ds.name, f"{value!r} is not a record id", field=field, code="wrong-type"
        ) from None
