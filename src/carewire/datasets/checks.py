"""Checks of record values against their definitions: required values, keys, links.

The pure half of :class:`~carewire.datasets.service.DatasetService`'s
validation. The service asks the store (does this key exist, which of these
ids are records) and hands the answers here; these functions decide and raise
the errors, naming the dataset, record and field. Nothing here awaits.

- Required values: :func:`require`.
- Keys: :func:`key_fields`, :func:`matchable_key_fields`, :func:`require_key_names`,
  :func:`upsert_key`, :func:`new_keys` (keys of several new rows),
  :func:`refuse_taken_key`, :func:`needs_one_by_one`.
- Links: :func:`link_for_value` and :func:`relink_target` (which links a value
  may set, by cardinality), :func:`parse_ref` (a record id or a key),
  :func:`unseen`, :func:`dangling`, :func:`no_record_with_key`,
  :func:`refuse_dangling` and :class:`PendingTargets` (link targets that must
  exist), :func:`refuse_referenced` (deleting a linked record).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from carewire.datasets.model import Cardinality, Dataset, Link, Record, RecordId, holds_reference
from carewire.datasets.values import RecordError, is_empty, is_record_id
from carewire.errors import ConflictError

#: A link value to check: (target record id, field, id of the record that names it).
TargetRef = tuple[RecordId, str, int | None]


# --- required values and keys ---------------------------------------------------------------


def require(ds: Dataset, values: Mapping[str, object], record_id: int | None) -> None:
    """Refuse a record without a value it must have (required attributes, key links).

    Raises:
        RecordError: ``required``, naming the first field without its value.
    """
    for attr in ds.attributes:
        if attr.must_have_value and is_empty(values.get(attr.name)):
            raise RecordError(
                ds.name, "a value is required", field=attr.name, record=record_id, code="required"
            )
    for link in ds.key_links:
        if values.get(link.name) is None:
            raise RecordError(
                ds.name,
                "a linked record is required (part of the key)",
                field=link.name,
                record=record_id,
                code="required",
            )


def key_fields(ds: Dataset) -> list[str]:
    """The fields of the dataset's key: key attributes, then key links."""
    return [a.name for a in ds.key_attributes] + [ln.name for ln in ds.key_links]


def matchable_key_fields(ds: Dataset, advice: str = "") -> list[str]:
    """The key fields of a dataset whose records are to be matched by key.

    Raises:
        RecordError: The dataset has no key (``advice`` is appended to the message).
    """
    fields = key_fields(ds)
    if not fields:
        raise RecordError(ds.name, f"has no key, so records cannot be matched{advice}")
    return fields


def require_key_names(ds: Dataset, fields: Sequence[str], key: Mapping[str, object]) -> None:
    """Refuse a key (to find records by) that does not name exactly the key ``fields``.

    Raises:
        RecordError: It names other fields, or not all of them.
    """
    if set(key) != set(fields):
        raise RecordError(ds.name, f"a key names exactly {', '.join(fields)}")


def upsert_key(ds: Dataset, row: Mapping[str, object]) -> dict[str, object]:
    """The key an upsert matches by, from its typed values.

    Raises:
        RecordError: A key field has no value.
    """
    key = {f: row.get(f) for f in key_fields(ds)}
    missing = [f for f, v in key.items() if is_empty(v)]
    if missing:
        raise RecordError(ds.name, f"upsert needs every key field; missing {', '.join(missing)}")
    return key


def refuse_taken_key(
    ds: Dataset, key: Mapping[str, object], found: Record | None, record_id: int | None
) -> None:
    """Refuse a key that ``found``, another record than ``record_id``, already has.

    Raises:
        ConflictError: ``duplicate-key``.
    """
    if found is not None and found.id != record_id:
        raise ConflictError(
            f"{ds.name}: record {found.id} already has the key {_shown(key.items())}",
            code="duplicate-key",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKeys:
    """The keys of new rows, sorted by how the store can be asked about them.

    Attributes:
        complete: Keys without an empty value, to be looked up together.
        partial: Rows whose key has a None (NULL never matches in SQL): asked one by one.
    """

    complete: list[dict[str, object]]
    partial: list[Mapping[str, object]]


def new_keys(ds: Dataset, rows: Iterable[Mapping[str, object]]) -> NewKeys:
    """The keys of rows to be created together, refusing two rows with one key.

    Raises:
        ConflictError: ``duplicate-key``, naming the first key that repeats.
    """
    fields = key_fields(ds)
    seen: set[tuple[object, ...]] = set()
    complete: list[dict[str, object]] = []
    partial: list[Mapping[str, object]] = []
    for row in rows:
        key = tuple(row.get(f) for f in fields)
        if key in seen:
            raise ConflictError(
                f"{ds.name}: two new records have the key {_shown(zip(fields, key, strict=True))}",
                code="duplicate-key",
            )
        seen.add(key)
        if any(v is None for v in key):
            partial.append(row)
        else:
            complete.append(dict(zip(fields, key, strict=True)))
    return NewKeys(complete=complete, partial=partial)


def needs_one_by_one(ds: Dataset, changes: Iterable[Collection[str]]) -> bool:
    """Whether changes (each the names of the fields it sets) touch a key or an m:n link.

    Such a list of changes cannot be checked and written in bulk.
    """
    slow = set(key_fields(ds)) | {ln.name for ln in ds.links if not holds_reference(ds.name, ln)}
    return any(slow.intersection(fields) for fields in changes)


def _shown(key: Iterable[tuple[str, object]]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in key)


# --- links ----------------------------------------------------------------------------------


def reverse_error(ds: Dataset, link: Link, record_id: int | None) -> RecordError:
    """The error for writing a link that is only the reverse of the target's link."""
    return RecordError(
        ds.name,
        f"{link.name} is the reverse of {link.target}.{link.reverse}; set it from that side",
        field=link.name,
        record=record_id,
    )


def link_for_value(ds: Dataset, name: str, value: object, record_id: int | None) -> Link:
    """The link a written value for ``name`` (not an attribute) sets.

    To-one links that hold the reference take a single target (or None), m:n
    links a list; 1:n links, and the 1:1 side without the column, are set
    from the other side.

    Raises:
        RecordError: ``unknown-field``, an m:n value that is not a list, or a reverse link.
    """
    link = ds.link(name)
    if link is None:
        err = RecordError(
            ds.name, f"unknown attribute or link {name!r}", record=record_id, code="unknown-field"
        )
        err.field = name  # named for the API, not repeated in the message
        raise err
    if holds_reference(ds.name, link):
        return link
    if link.cardinality is not Cardinality.MANY_TO_MANY:
        raise reverse_error(ds, link, record_id)
    if not isinstance(value, list | tuple):
        raise RecordError(ds.name, "an m:n link takes a list", field=name, record=record_id)
    return link


def relink_target(
    ds: Dataset, link_name: str, count: int, *, add: bool, record_id: int | None
) -> Link:
    """The link that ``link``/``unlink`` of ``count`` targets changes.

    Raises:
        RecordError: An unknown link, adding other than one target to a
            to-one link, or a reverse link.
    """
    link = ds.link(link_name)
    if link is None:
        raise RecordError(
            ds.name, f"unknown link {link_name!r}", record=record_id, code="unknown-field"
        )
    if holds_reference(ds.name, link):
        if add and count != 1:
            raise RecordError(ds.name, "a to-one link takes exactly one target", field=link.name)
        return link
    if link.cardinality is not Cardinality.MANY_TO_MANY:
        raise reverse_error(ds, link, record_id)
    return link


def parse_ref(
    ds: Dataset, target: Dataset, ref: object, *, field: str, record_id: int | None
) -> RecordId | Mapping[str, object]:
    """A link value: a record id (as a number or text), or a mapping of the target's key.

    Raises:
        RecordError: Neither, or not a possible record id.
    """
    if isinstance(ref, bool) or not isinstance(ref, int | str | Mapping):
        raise RecordError(
            ds.name,
            f"{ref!r} is not a record id or key of {target.name}",
            field=field,
            record=record_id,
        )
    if isinstance(ref, Mapping):
        return ref
    try:
        rid = int(ref)
        if not is_record_id(rid):
            raise ValueError(rid)
    except ValueError:
        raise RecordError(
            ds.name, f"{ref!r} is not a record id of {target.name}", field=field, record=record_id
        ) from None
    return RecordId(rid)


def unseen(target: str, ids: Iterable[RecordId], seen: Set[tuple[str, int]]) -> list[RecordId]:
    """The ids of ``target`` not known to exist yet, each once, in order."""
    return [i for i in dict.fromkeys(ids) if (target, int(i)) not in seen]


def dangling(
    ds: Dataset, target: str, missing: RecordId, *, field: str, record_id: int | None
) -> RecordError:
    """The error for a link to a record that does not exist."""
    return RecordError(
        ds.name,
        f"{target} record {missing} does not exist",
        field=field,
        record=record_id,
        code="dangling-link",
    )


def no_record_with_key(
    ds: Dataset, target: str, key: Mapping[str, object], *, field: str, record_id: int | None
) -> RecordError:
    """The error for a link naming, by key, a record that does not exist."""
    shown = ", ".join(f"{k}={v!r}" for k, v in key.items())
    return RecordError(
        ds.name,
        f"no {target} record with {shown}",
        field=field,
        record=record_id,
        code="dangling-link",
    )


def refuse_dangling(
    ds: Dataset, target: str, refs: Iterable[TargetRef], missing: Collection[RecordId]
) -> None:
    """Refuse the first of ``refs`` whose target is ``missing``.

    Raises:
        RecordError: ``dangling-link``, naming that field and record.
    """
    for rid, field, record_id in refs:
        if rid in missing:
            raise dangling(ds, target, rid, field=field, record_id=record_id)


def refuse_referenced(ds: Dataset, record_id: int, refs: Sequence[tuple[str, int]]) -> None:
    """Refuse deleting a record that other records' links still point at.

    Args:
        ds: The record's dataset.
        record_id: The record.
        refs: (``DATASET.link``, count) of each link pointing at it.

    Raises:
        ConflictError: There are such links; the message lists them.
    """
    if refs:
        listing = ", ".join(f"{name} ({n})" for name, n in refs)
        raise ConflictError(
            f"{ds.name} record {record_id} is still linked from {listing}; "
            "delete or re-link those records first"
        )


class PendingTargets:
    """Link targets named by a bulk write, to be checked together (one query per dataset)."""

    __slots__ = ("by_target",)

    def __init__(self) -> None:
        self.by_target: dict[str, tuple[Dataset, list[TargetRef]]] = {}

    def add(
        self, target: Dataset, ids: Sequence[RecordId], field: str, record_id: int | None
    ) -> None:
        """Remember that ``field`` of a row names ``ids`` of ``target``."""
        refs = self.by_target.setdefault(target.name, (target, []))[1]
        refs.extend((rid, field, record_id) for rid in ids)


class VouchedTargets(PendingTargets):
    """Link targets a caller vouched for (``create_many(..., vouched=True)``): not collected."""

    __slots__ = ()

    def add(
        self, target: Dataset, ids: Sequence[RecordId], field: str, record_id: int | None
    ) -> None:
        """Nothing to remember: the database's foreign keys are the check."""
