"""Record queries: filters, sorting and paging, as plain data.

A :class:`Query` names attributes (or to-one links, compared by record id)
of one dataset. The store turns it into SQL; :func:`parse_filter` reads the
``field:op:value`` form the CLI and the REST API accept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from carewire.datasets.model import Record
from carewire.errors import ValidationError

#: The largest page a query may ask for.
MAX_LIMIT = 1000
#: The largest offset (far beyond any table; keeps the value a 64-bit number).
MAX_OFFSET = 2**62


class FilterOp(enum.StrEnum):
    """A comparison a filter makes."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    CONTAINS = "contains"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"


#: The operators a PHI attribute can be filtered with: they compare blind indexes.
PHI_OPS = frozenset({FilterOp.EQ, FilterOp.NE, FilterOp.IN, FilterOp.EMPTY, FilterOp.NOT_EMPTY})


def phi_refusal(what: str) -> str:
    """Why a PHI attribute cannot be filtered with ``what`` (or sorted), after its name."""
    return (
        f"is PHI, stored encrypted: it cannot be used with {what!r}; "
        "only eq, ne, in, empty and not_empty filters work on it"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    """One condition on a field.

    Attributes:
        field: An attribute or to-one link name.
        op: The comparison.
        value: The operand (a list for ``in``; ignored by ``empty``/``not_empty``).
    """

    field: str
    op: FilterOp
    value: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sort:
    """One sort key.

    Attributes:
        field: An attribute or to-one link name (or ``id``).
        is_descending: Largest first.
    """

    field: str
    is_descending: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Which records of a dataset, in which order, which page.

    Attributes:
        filters: All must hold.
        sort: Sort keys, most significant first (``id`` breaks ties).
        offset: Records to skip.
        limit: Page size (at most :data:`MAX_LIMIT`).
    """

    filters: tuple[Filter, ...] = ()
    sort: tuple[Sort, ...] = ()
    offset: int = 0
    limit: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise ValidationError(f"offset must be between 0 and {MAX_OFFSET}, not {self.offset}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of query results.

    Attributes:
        records: The records on this page.
        total: How many records match in all.
    """

    records: tuple[Record, ...]
    total: int


def parse_filter(text: str) -> Filter:
    """Read ``field:op:value`` (``status:eq:Queued``, ``level:in:1,2``, ``topic:empty``).

    A bare ``field=value`` means ``eq``.

    Raises:
        ValidationError: The operator is unknown or the value is missing.
    """
    name, eq, value = text.partition("=")
    if eq and ":" not in name:
        return Filter(field=name, op=FilterOp.EQ, value=value)
    name, _, rest = text.partition(":")
    op_text, sep, value = rest.partition(":")
    try:
        op = FilterOp(op_text)
    except ValueError:
        ops = ", ".join(o.value for o in FilterOp)
        raise ValidationError(
            f"filter {text!r}: unknown operator {op_text!r} (use {ops})"
        ) from None
    if op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
        return Filter(field=name, op=op)
    if not sep:
        raise ValidationError(f"filter {text!r}: {op} needs a value (field:{op}:value)")
    if op is FilterOp.IN:
        return Filter(field=name, op=op, value=value.split(","))
    return Filter(field=name, op=op, value=value)


def parse_sort(text: str) -> tuple[Sort, ...]:
    """Read ``field,-other`` (a leading minus sorts descending)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        out.append(Sort(field=part.lstrip("-"), is_descending=part.startswith("-")))
    return tuple(out)
