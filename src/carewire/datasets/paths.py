"""Attribute paths across links, in both directions, and reading them from records.

A path is dot-separated: zero or more link names, then an attribute name, a
link name or ``id``. On BEDS, ``room.room_number`` reads the room's number,
``locs.assignments.usr.login`` every user assigned to any location of the
bed, ``room`` the room's record id and ``id`` the bed's own id. On ROOMS,
``beds.bed_number`` walks the reverse of ``BEDS.room``.

A link segment may keep only the records whose attributes have given values:
``locs.assignments[level=1].usr.login`` reads the users of level-1
assignments only, ``assignments[level=2,state=active]`` needs both. Values
are compared as text (``level=1`` matches the String ``"1"`` and the Integer
1); they may not contain ``.``, ``,``, ``[`` or ``]``.

Theory of operation: :func:`parse_path` validates a path against the
definitions and returns an :class:`AttributePath` (no I/O). A path that
crosses a to-many link (1:n, m:n) is *many* and yields a list; otherwise it
yields one value or None. :class:`PathResolver` walks the steps level by
level: every record reached at one level is followed with one
:meth:`~carewire.datasets.store.RecordStore.follow` call, and the records a
path ends at are fetched with one
:meth:`~carewire.datasets.store.RecordStore.get_many` call. Within one
:meth:`PathResolver.resolve_all`, followed links and fetched records are
cached, so paths sharing a prefix (``room.room_number``, ``room.unit.name``)
fetch it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from carewire.datasets.model import (
    Attribute,
    Dataset,
    DatasetName,
    Link,
    Record,
    RecordId,
    holds_reference,
)
from carewire.datasets.registry import Registry
from carewire.datasets.store import RecordStore
from carewire.errors import ValidationError

log = logging.getLogger(__name__)

#: The final segment that reads a record's own id.
ID_SEGMENT = "id"
#: A link value not at hand (the record was not read, or its values leave the link out).
_UNKNOWN = object()


class PathError(ValidationError):
    """A path does not fit the dataset definitions; the message names dataset and segment."""

    code = "invalid-path"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One link crossed by a path.

    Attributes:
        dataset: The dataset the step starts from.
        link: The link followed (declared on ``dataset``).
    """

    dataset: DatasetName
    link: Link
    where: tuple[tuple[str, str], ...] = ()

    @property
    def is_to_many(self) -> bool:
        """Whether the step can reach more than one record."""
        return self.link.is_to_many

    @property
    def holds_reference(self) -> bool:
        """Whether the source record stores the target's id (n:1, owning side of 1:1)."""
        return holds_reference(self.dataset, self.link)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributePath:
    """A validated path from one dataset to an attribute, a link or ``id``.

    Attributes:
        text: The path as written (``room.room_number``).
        dataset: The dataset the path starts from.
        steps: The links crossed, in order.
        attribute: The attribute read at the end; None when the path ends at a
            link or at ``id``, in which case it yields record ids.
    """

    text: str
    dataset: DatasetName
    steps: tuple[Step, ...]
    attribute: Attribute | None

    @property
    def is_many(self) -> bool:
        """Whether any step is to-many, so the path yields a list."""
        return any(step.is_to_many for step in self.steps)

    @property
    def is_direct(self) -> bool:
        """Whether the path crosses no link (a plain attribute, or ``id``, of the record)."""
        return not self.steps

    @property
    def target(self) -> DatasetName:
        """The dataset of the records the path ends at."""
        return self.steps[-1].link.target if self.steps else self.dataset


def parse_path(registry: Registry, dataset: str, text: str) -> AttributePath:
    """Validate ``text`` as a path starting from ``dataset``.

    Args:
        registry: The dataset definitions.
        dataset: The dataset the path starts from (``BEDS``).
        text: The path (``room.room_number``).

    Returns:
        The parsed path.

    Raises:
        UnknownDatasetError: ``dataset`` does not exist.
        PathError: The path is empty, has an empty segment, names a field the
            dataset reached does not have, or continues past an attribute or ``id``.
    """
    current = registry.get(dataset)
    start = current.name

    def fail(problem: str) -> PathError:
        return PathError(f"{start}: path {text!r}: {problem}")

    if not text:
        raise fail("the path is empty")
    segments = text.split(".")
    steps: list[Step] = []
    for index, segment in enumerate(segments):
        is_last = index == len(segments) - 1
        if not segment:
            raise fail(f"segment {index + 1} is empty")
        segment, where = _filter_of(segment, fail)
        if where and (segment == ID_SEGMENT or current.attribute(segment) is not None):
            raise fail(f"only links can be filtered, and {segment!r} is not a link")
        if segment == ID_SEGMENT or current.attribute(segment) is not None:
            if not is_last:
                what = (
                    "the record id" if segment == ID_SEGMENT else f"an attribute of {current.name}"
                )
                raise fail(f"{segment!r} is {what}, so nothing can follow it")
            attr = current.attribute(segment)
            return AttributePath(text=text, dataset=start, steps=tuple(steps), attribute=attr)
        link = current.link(segment)
        if link is None:
            raise fail(f"{current.name} has no attribute or link {segment!r}")
        target = registry.get(link.target)
        for name, _ in where:
            if target.attribute(name) is None:
                raise fail(f"{target.name} has no attribute {name!r} to filter {segment!r} on")
        steps.append(Step(dataset=current.name, link=link, where=where))
        current = target
    return AttributePath(text=text, dataset=start, steps=tuple(steps), attribute=None)


def _filter_of(
    segment: str, fail: Callable[[str], PathError]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``assignments[level=1,state=active]`` → (``assignments``, the conditions)."""
    if "[" not in segment and "]" not in segment:
        return segment, ()
    name, bracket, rest = segment.partition("[")
    if not bracket or not rest.endswith("]") or "[" in rest or "]" in rest[:-1]:
        raise fail(f"segment {segment!r}: write a filter as link[attribute=value,...]")
    where: list[tuple[str, str]] = []
    for part in rest[:-1].split(","):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise fail(f"segment {segment!r}: {part!r} is not attribute=value")
        where.append((key.strip(), value.strip()))
    return name, tuple(where)


class PathResolver:
    """Reads parsed paths from records, batching and caching store reads."""

    def __init__(self, registry: Registry, store: RecordStore) -> None:
        self._registry = registry
        self._store = store

    async def resolve(self, record: Record, path: AttributePath) -> object:
        """The value ``path`` reaches from ``record``.

        Returns:
            When ``path.is_many``: a list, in record id order, one entry per
            record reached (None values dropped). Otherwise a single value,
            or None when a to-one link on the way is unset.

        Raises:
            PathError: The path starts from another dataset than the record's.
        """
        return (await self.resolve_all(record, [path]))[path.text]

    async def resolve_all(
        self, record: Record, paths: Iterable[AttributePath]
    ) -> dict[str, object]:
        """Every path's value (see :meth:`resolve`), keyed by ``path.text``.

        Links followed and records fetched are shared between the paths.

        Raises:
            PathError: A path starts from another dataset than the record's.
        """
        walk = _Walk(self._registry, self._store, record)
        out: dict[str, object] = {}
        for path in paths:
            if path.dataset != record.dataset:
                raise PathError(
                    f"{path.dataset}: path {path.text!r} cannot be read from a "
                    f"{record.dataset} record"
                )
            if path.text not in out:
                out[path.text] = await walk.resolve(path)
        return out


class _Walk:
    """One :meth:`PathResolver.resolve_all` call: the start record and its caches."""

    def __init__(self, registry: Registry, store: RecordStore, record: Record) -> None:
        self._registry = registry
        self._store = store
        self._start = record
        self._records: dict[tuple[str, RecordId], Record] = {(record.dataset, record.id): record}
        self._links: dict[tuple[str, str, RecordId], list[RecordId]] = {}

    async def resolve(self, path: AttributePath) -> object:
        ids = [self._start.id]
        for step in path.steps:
            ids = await self._follow(step, ids)
        if path.attribute is None:
            values: list[object] = list(ids)
        else:
            records = await self._fetch(self._registry.get(path.target), ids)
            values = [records[i].get(path.attribute.name) for i in ids if i in records]
        if path.is_many:
            return [v for v in values if v is not None]
        return values[0] if values else None

    async def _follow(self, step: Step, ids: Sequence[RecordId]) -> list[RecordId]:
        """The distinct ids ``step`` reaches from ``ids``, in id order."""
        ds, name = step.dataset, step.link.name
        if step.holds_reference:
            # The target's id is a value of the source record: no read when it is at hand.
            for i in ids:
                rec = self._records.get((ds, i))
                ref = _UNKNOWN if rec is None else rec.values.get(name, _UNKNOWN)
                if ref is None:
                    self._links[(ds, name, i)] = []
                elif isinstance(ref, int) and not isinstance(ref, bool):
                    self._links[(ds, name, i)] = [RecordId(ref)]
        missing = [i for i in ids if (ds, name, i) not in self._links]
        if missing:
            found = await self._store.follow(self._registry.get(ds), step.link, missing)
            for i in missing:
                self._links[(ds, name, i)] = found.get(i, [])
        reached = sorted({t for i in ids for t in self._links[(ds, name, i)]})
        if not step.where:
            return reached
        records = await self._fetch(self._registry.get(step.link.target), reached)
        return [
            i
            for i in reached
            if i in records and all(_as_text(records[i].get(k)) == v for k, v in step.where)
        ]

    async def _fetch(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records of ``ds`` by id, from the cache or one ``get_many``."""
        missing = [i for i in ids if (ds.name, i) not in self._records]
        if missing:
            for rid, rec in (await self._store.get_many(ds, missing)).items():
                self._records[(ds.name, rid)] = rec
        return {i: self._records[(ds.name, i)] for i in ids if (ds.name, i) in self._records}


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
