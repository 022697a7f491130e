"""The one way to write dataset records: validate, write in one transaction, announce.

Every create, update, upsert, delete, link and unlink goes through
:class:`DatasetService`. Values are checked (known fields, types, required
values, unique keys, link targets that exist) with errors naming the dataset,
record and field; each call, or each :meth:`DatasetService.batch`, is one
transaction; and after it commits every written record produces exactly one
:class:`~carewire.datasets.model.RecordChanged` for the subscribers (the
rules engine, the XMPP adapter).

Link values: a to-one link takes a record id or a mapping of the target's
key fields (``{"room": {"room_number": "101", "facility": {"name": "Main"}}}``);
an m:n link takes a list of those and replaces the whole set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import cast

from carewire.clock import Clock
from carewire.datasets.model import (
    Cardinality,
    ChangeKind,
    Dataset,
    Origin,
    Record,
    RecordChanged,
    RecordId,
    Values,
    holds_reference,
)
from carewire.datasets.query import Filter, FilterOp, Page, Query
from carewire.datasets.registry import Registry
from carewire.datasets.store import RecordStore, RecordWriter
from carewire.datasets.values import RecordError, coerce, is_empty, is_record_id
from carewire.errors import ConflictError, NotFoundError

log = logging.getLogger(__name__)

Subscriber = Callable[[RecordChanged], object]


class RecordNotFoundError(NotFoundError):
    """No record with this id (or key) in the dataset."""

    code = "record-not-found"


class Batch:
    """Writes that commit together; see :meth:`DatasetService.batch`."""

    def __init__(self, service: DatasetService, writer: RecordWriter, origin: Origin) -> None:
        self._svc = service
        self._w = writer
        self._origin = origin
        self._events: dict[tuple[str, int], RecordChanged] = {}

    @property
    def events(self) -> list[RecordChanged]:
        """One event per written record, in the order records were first written."""
        return list(self._events.values())

    async def create(self, dataset: str, values: Mapping[str, object]) -> Record:
        """Create a record."""
        ds = self._svc.registry.get(dataset)
        row, many = await self._prepare(ds, values, None)
        self._require(ds, row, None)
        await self._check_key(ds, row, None)
        rid = await self._w.insert(ds, row)
        new = {name: None for name in _column_fields(ds)} | row
        for name, ids in many.items():
            link = ds.link(name)
            assert link is not None
            await self._w.add_links(ds, link, rid, ids)
            new[name] = sorted(ids)
        return self._emit(ds, rid, ChangeKind.CREATE, None, new)

    async def update(self, dataset: str, record_id: int, changes: Mapping[str, object]) -> Record:
        """Change some fields of a record."""
        ds = self._svc.registry.get(dataset)
        old_rec = await self._existing(ds, record_id)
        row, many = await self._prepare(ds, changes, old_rec.id)
        merged = {**old_rec.values, **row}
        self._require(ds, merged, old_rec.id)
        if any(f in row for f in _key_fields(ds)):
            await self._check_key(ds, merged, old_rec.id)
        changed = {k: v for k, v in row.items() if old_rec.values.get(k) != v}
        await self._w.update(ds, old_rec.id, changed)
        old, new = dict(old_rec.values), merged
        for name, ids in many.items():
            link = ds.link(name)
            assert link is not None
            before = await self._w.linked_ids(ds, link, old_rec.id)
            await self._w.remove_links(ds, link, old_rec.id, [i for i in before if i not in ids])
            await self._w.add_links(ds, link, old_rec.id, ids)
            old[name], new[name] = sorted(before), sorted(set(ids))
        return self._emit(ds, old_rec.id, ChangeKind.UPDATE, old, new)

    async def upsert(self, dataset: str, values: Mapping[str, object]) -> Record:
        """Update the record with the same key, or create one."""
        ds = self._svc.registry.get(dataset)
        if not ds.has_key:
            raise RecordError(ds.name, "has no key, so records cannot be matched; use create")
        row, _ = await self._prepare(
            ds, {k: v for k, v in values.items() if k in _key_fields(ds)}, None
        )
        key = {f: row.get(f) for f in _key_fields(ds)}
        missing = [f for f, v in key.items() if is_empty(v)]
        if missing:
            raise RecordError(
                ds.name, f"upsert needs every key field; missing {', '.join(missing)}"
            )
        found = await self._w.find_by_key(ds, key)
        if found is None:
            return await self.create(dataset, values)
        rest = {k: v for k, v in values.items() if k not in key}
        return await self.update(dataset, found.id, rest)

    async def delete(self, dataset: str, record_id: int) -> None:
        """Delete a record (refused while other records' links point at it)."""
        ds = self._svc.registry.get(dataset)
        rec = await self._existing(ds, record_id)
        refs = await self._w.referrers(ds, rec.id)
        if refs:
            listing = ", ".join(f"{name} ({n})" for name, n in refs)
            raise ConflictError(
                f"{ds.name} record {rec.id} is still linked from {listing}; "
                "delete or re-link those records first"
            )
        await self._w.delete(ds, rec.id)
        self._emit(ds, rec.id, ChangeKind.DELETE, dict(rec.values), None)

    async def link(
        self, dataset: str, record_id: int, link_name: str, targets: Sequence[object]
    ) -> Record:
        """Add targets to an m:n link (or set a to-one link to the single target)."""
        return await self._relink(dataset, record_id, link_name, targets, add=True)

    async def unlink(
        self, dataset: str, record_id: int, link_name: str, targets: Sequence[object]
    ) -> Record:
        """Remove targets from an m:n link (or clear a to-one link)."""
        return await self._relink(dataset, record_id, link_name, targets, add=False)

    async def _relink(
        self, dataset: str, record_id: int, link_name: str, targets: Sequence[object], *, add: bool
    ) -> Record:
        ds = self._svc.registry.get(dataset)
        link = ds.link(link_name)
        if link is None:
            raise RecordError(
                ds.name, f"unknown link {link_name!r}", record=record_id, code="unknown-field"
            )
        if holds_reference(ds.name, link):
            if add and len(targets) != 1:
                raise RecordError(
                    ds.name, "a to-one link takes exactly one target", field=link.name
                )
            return await self.update(dataset, record_id, {link.name: targets[0] if add else None})
        if link.cardinality is not Cardinality.MANY_TO_MANY:
            raise _reverse_error(ds, link, record_id)
        rec = await self._existing(ds, record_id)
        ids = await self._link_targets(ds, link.name, link.target, targets, rec.id)
        before = await self._w.linked_ids(ds, link, rec.id)
        if add:
            await self._w.add_links(ds, link, rec.id, ids)
            after = sorted(set(before) | set(ids))
        else:
            await self._w.remove_links(ds, link, rec.id, ids)
            after = sorted(set(before) - set(ids))
        old = {**rec.values, link.name: sorted(before)}
        return self._emit(ds, rec.id, ChangeKind.UPDATE, old, {**rec.values, link.name: after})

    # --- helpers ----------------------------------------------------------

    async def _existing(self, ds: Dataset, record_id: int) -> Record:
        rec = await self._w.get(ds, RecordId(record_id)) if is_record_id(record_id) else None
        if rec is None:
            raise RecordNotFoundError(f"{ds.name} record {record_id} does not exist")
        return rec

    async def _prepare(
        self, ds: Dataset, values: Mapping[str, object], record_id: int | None
    ) -> tuple[dict[str, object], dict[str, list[RecordId]]]:
        """Split input into column values and m:n target lists, typed and resolved."""
        row: dict[str, object] = {}
        many: dict[str, list[RecordId]] = {}
        for name, value in values.items():
            attr = ds.attribute(name)
            if attr is not None:
                row[name] = coerce(ds.name, attr, value, record_id)
                continue
            link = ds.link(name)
            if link is None:
                err = RecordError(
                    ds.name,
                    f"unknown attribute or link {name!r}",
                    record=record_id,
                    code="unknown-field",
                )
                err.field = name
                raise err
            if holds_reference(ds.name, link):
                row[name] = (
                    None
                    if value is None
                    else (await self._link_targets(ds, name, link.target, [value], record_id))[0]
                )
            elif link.cardinality is Cardinality.MANY_TO_MANY:
                if not isinstance(value, list | tuple):
                    raise RecordError(
                        ds.name, "an m:n link takes a list", field=name, record=record_id
                    )
                many[name] = await self._link_targets(ds, name, link.target, value, record_id)
            else:
                raise _reverse_error(ds, link, record_id)
        return row, many

    async def _link_targets(
        self,
        ds: Dataset,
        field: str,
        target_name: str,
        refs: Sequence[object],
        record_id: int | None,
    ) -> list[RecordId]:
        target = self._svc.registry.get(target_name)
        ids: list[RecordId] = []
        for ref in refs:
            if isinstance(ref, bool) or not isinstance(ref, int | str | Mapping):
                raise RecordError(
                    ds.name,
                    f"{ref!r} is not a record id or key of {target.name}",
                    field=field,
                    record=record_id,
                )
            if isinstance(ref, Mapping):
                ids.append(await self._resolve_key(ds, field, target, ref, record_id))
                continue
            try:
                rid = int(ref)
                if not is_record_id(rid):
                    raise ValueError(rid)
                ids.append(RecordId(rid))
            except ValueError:
                raise RecordError(
                    ds.name,
                    f"{ref!r} is not a record id of {target.name}",
                    field=field,
                    record=record_id,
                ) from None
        missing = await self._w.missing(target, ids)
        if missing:
            raise RecordError(
                ds.name,
                f"{target.name} record {missing[0]} does not exist",
                field=field,
                record=record_id,
                code="dangling-link",
            )
        return ids

    async def _resolve_key(
        self,
        ds: Dataset,
        field: str,
        target: Dataset,
        ref: Mapping[str, object],
        record_id: int | None,
    ) -> RecordId:
        row, _ = await self._prepare(target, ref, None)
        found = await self._w.find_by_key(target, row) if row else None
        if found is None:
            shown = ", ".join(f"{k}={v!r}" for k, v in ref.items())
            raise RecordError(
                ds.name,
                f"no {target.name} record with {shown}",
                field=field,
                record=record_id,
                code="dangling-link",
            )
        return found.id

    def _require(self, ds: Dataset, values: Mapping[str, object], record_id: int | None) -> None:
        for attr in ds.attributes:
            if attr.must_have_value and is_empty(values.get(attr.name)):
                raise RecordError(
                    ds.name,
                    "a value is required",
                    field=attr.name,
                    record=record_id,
                    code="required",
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

    async def _check_key(
        self, ds: Dataset, values: Mapping[str, object], record_id: int | None
    ) -> None:
        if not ds.has_key:
            return
        key = {f: values.get(f) for f in _key_fields(ds)}
        found = await self._w.find_by_key(ds, key)
        if found is not None and found.id != record_id:
            shown = ", ".join(f"{k}={v!r}" for k, v in key.items())
            raise ConflictError(
                f"{ds.name}: record {found.id} already has the key {shown}", code="duplicate-key"
            )

    def _emit(
        self, ds: Dataset, rid: RecordId, kind: ChangeKind, old: Values | None, new: Values | None
    ) -> Record:
        event = RecordChanged(
            dataset=ds.name,
            record_id=rid,
            kind=kind,
            old=old,
            new=new,
            origin=self._origin,
            at=self._svc.clock.now(),
        )
        key = (ds.name, int(rid))
        first = self._events.get(key)
        if first is None:
            self._events[key] = event
        elif first.kind is ChangeKind.CREATE and kind is ChangeKind.DELETE:
            del self._events[key]  # created and deleted in one transaction: nothing happened
        else:  # one event per record per transaction: first old, last new
            merged_kind = ChangeKind.CREATE if first.kind is ChangeKind.CREATE else kind
            self._events[key] = RecordChanged(
                dataset=ds.name,
                record_id=rid,
                kind=merged_kind,
                old=first.old,
                new=new,
                origin=self._origin,
                at=event.at,
            )
        return Record(dataset=ds.name, id=rid, values=new or old or {})


def _column_fields(ds: Dataset) -> list[str]:
    """Attributes and to-one links: the values every stored record has."""
    return [a.name for a in ds.attributes] + [
        ln.name for ln in ds.links if holds_reference(ds.name, ln)
    ]


def _key_fields(ds: Dataset) -> list[str]:
    return [a.name for a in ds.key_attributes] + [ln.name for ln in ds.key_links]


def _reverse_error(ds: Dataset, link: object, record_id: int | None) -> RecordError:
    from carewire.datasets.model import Link

    assert isinstance(link, Link)
    return RecordError(
        ds.name,
        f"{link.name} is the reverse of {link.target}.{link.reverse}; set it from that side",
        field=link.name,
        record=record_id,
    )


class DatasetService:
    """Validated, transactional, announced writes; and reads."""

    def __init__(self, registry: Registry, store: RecordStore, clock: Clock) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` with every :class:`RecordChanged`, after commit, in write order."""
        self._subscribers.append(callback)

    @asynccontextmanager
    async def batch(
        self, origin: Origin | None = None, name: str = "write_records"
    ) -> AsyncIterator[Batch]:
        """Several writes in one transaction; events go out after it commits."""
        async with self.store.write(name) as writer:
            b = Batch(self, writer, origin or Origin())
            writer.after_commit(lambda: self._publish(b.events))
            yield b

    def _publish(self, events: Sequence[RecordChanged]) -> None:
        for event in events:
            for callback in self._subscribers:
                try:
                    callback(event)
                except Exception:  # supervisor: one subscriber's bug must not starve others
                    log.exception("RecordChanged subscriber failed for %s", event.dataset)

    async def create(
        self, dataset: str, values: Mapping[str, object], *, origin: Origin | None = None
    ) -> Record:
        """Create a record (see :meth:`Batch.create`)."""
        async with self.batch(origin, "create_record") as b:
            return await b.create(dataset, values)

    async def update(
        self,
        dataset: str,
        record_id: int,
        changes: Mapping[str, object],
        *,
        origin: Origin | None = None,
    ) -> Record:
        """Change some fields of a record."""
        async with self.batch(origin, "update_record") as b:
            return await b.update(dataset, record_id, changes)

    async def upsert(
        self, dataset: str, values: Mapping[str, object], *, origin: Origin | None = None
    ) -> Record:
        """Update the record with the same key, or create it."""
        async with self.batch(origin, "upsert_record") as b:
            return await b.upsert(dataset, values)

    async def delete(self, dataset: str, record_id: int, *, origin: Origin | None = None) -> None:
        """Delete a record."""
        async with self.batch(origin, "delete_record") as b:
            await b.delete(dataset, record_id)

    async def link(
        self,
        dataset: str,
        record_id: int,
        link: str,
        targets: Sequence[object],
        *,
        origin: Origin | None = None,
    ) -> Record:
        """Add link targets."""
        async with self.batch(origin, "link_records") as b:
            return await b.link(dataset, record_id, link, targets)

    async def unlink(
        self,
        dataset: str,
        record_id: int,
        link: str,
        targets: Sequence[object],
        *,
        origin: Origin | None = None,
    ) -> Record:
        """Remove link targets."""
        async with self.batch(origin, "unlink_records") as b:
            return await b.unlink(dataset, record_id, link, targets)

    async def get(self, dataset: str, record_id: int) -> Record:
        """One record.

        Raises:
            RecordNotFoundError: It does not exist.
        """
        ds = self.registry.get(dataset)
        rec = await self.store.get(ds, RecordId(record_id)) if is_record_id(record_id) else None
        if rec is None:
            raise RecordNotFoundError(f"{ds.name} record {record_id} does not exist")
        return rec

    async def query(self, dataset: str, query: Query) -> Page:
        """Records matching ``query``; filter values are coerced to the fields' types."""
        ds = self.registry.get(dataset)
        filters = tuple(self._typed_filter(ds, f) for f in query.filters)
        for s in query.sort:
            if s.field != "id" and s.field not in ds.field_names:
                raise RecordError(
                    ds.name, f"cannot sort by unknown field {s.field!r}", code="unknown-field"
                )
            link = ds.link(s.field)
            if link is not None and not holds_reference(ds.name, link):
                raise RecordError(ds.name, f"cannot sort by the to-many link {s.field!r}")
        return await self.store.query(
            ds, Query(filters=filters, sort=query.sort, offset=query.offset, limit=query.limit)
        )

    def _typed_filter(self, ds: Dataset, f: Filter) -> Filter:
        attr = ds.attribute(f.field)
        if attr is not None:
            if f.op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
                return f
            if f.op is FilterOp.CONTAINS:
                return Filter(field=f.field, op=f.op, value=str(f.value))
            if f.op is FilterOp.IN:
                items = f.value if isinstance(f.value, list | tuple) else [f.value]
                return Filter(
                    field=f.field, op=f.op, value=[coerce(ds.name, attr, v) for v in items]
                )
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
        if f.op is FilterOp.IN:
            items = f.value if isinstance(f.value, list | tuple) else [f.value]
            return Filter(field=f.field, op=f.op, value=[_int(ds, f.field, v) for v in items])
        return Filter(field=f.field, op=f.op, value=_int(ds, f.field, f.value))


def _int(ds: Dataset, field: str, value: object) -> int:
    try:
        number = int(cast(str, value))
        if not is_record_id(number):
            raise ValueError(number)
        return number
    except (TypeError, ValueError):
        raise RecordError(
            ds.name, f"{value!r} is not a record id", field=field, code="wrong-type"
        ) from None
