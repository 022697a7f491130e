"""The one way to write dataset records: validate, write in one transaction, announce.

Every create, update, upsert, delete, link and unlink goes through
:class:`DatasetService`. Values are checked (known fields, types, required
values, unique keys, link targets that exist) with errors naming the dataset,
record and field; each call, or each :meth:`DatasetService.batch`, is one
transaction; and after it commits every written record produces exactly one
:class:`~carewire.datasets.model.RecordChanged` for the subscribers (the
rules engine, the XMPP adapter).

The decisions are pure and live beside this module: :mod:`.checks` (required
values, keys, links) and :mod:`.changes` (the values events carry, one event
per record). Here they meet the store: what to ask it, in which order.

Bulk writes (:meth:`Batch.create_many`, :meth:`Batch.update_many`) validate
every value the same way but check link targets with one query per target
dataset, keys with one query per list, and write with batched statements;
a transaction remembers the records it created or found, so their existence
is not asked again. They are for high-rate writers such as message tracking.

Link values: a to-one link takes a record id or a mapping of the target's
key fields (``{"room": {"room_number": "101", "facility": {"name": "Main"}}}``);
an m:n link takes a list of those and replaces the whole set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import cast

from carewire.clock import Clock
from carewire.datasets.changes import (
    ChangeSet,
    changed_fields,
    column_fields,
    created_values,
    linked_after,
    written_record,
)
from carewire.datasets.checks import (
    PendingTargets,
    VouchedTargets,
    dangling,
    key_fields,
    link_for_value,
    matchable_key_fields,
    needs_one_by_one,
    new_keys,
    no_record_with_key,
    parse_ref,
    refuse_dangling,
    refuse_referenced,
    refuse_taken_key,
    relink_target,
    require,
    require_key_names,
    unseen,
    upsert_key,
)
from carewire.datasets.model import (
    Cardinality,
    ChangeKind,
    Dataset,
    Link,
    Origin,
    Record,
    RecordChanged,
    RecordId,
    Values,
    holds_reference,
)
from carewire.datasets.query import Page, Query
from carewire.datasets.registry import Registry
from carewire.datasets.shapes import Shape, Shapes
from carewire.datasets.store import RecordStore, RecordWriter
from carewire.datasets.subscribers import Subscriber, Subscribers
from carewire.datasets.typed_query import typed_query
from carewire.datasets.values import coerce, is_record_id
from carewire.errors import NotFoundError

log = logging.getLogger(__name__)


class RecordNotFoundError(NotFoundError):
    """No record with this id (or key) in the dataset."""

    code = "record-not-found"


class Batch:
    """Writes that commit together; see :meth:`DatasetService.batch`."""

    def __init__(self, service: DatasetService, writer: RecordWriter, origin: Origin) -> None:
        self._svc = service
        self._w = writer
        self._origin = origin
        self._changes = ChangeSet()
        # (dataset, id) of records this transaction created or saw exist: link checks skip them
        self._exists: set[tuple[str, int]] = set()

    @property
    def events(self) -> list[RecordChanged]:
        """One event per written record, in the order records were first written."""
        return self._changes.events

    async def create(self, dataset: str, values: Mapping[str, object]) -> Record:
        """Create a record."""
        ds = self._svc.registry.get(dataset)
        row, many = await self._prepare(ds, values, None)
        require(ds, row, None)
        await self._check_key(ds, row, None)
        rid = await self._w.insert(ds, row)
        self._exists.add((ds.name, int(rid)))
        for name, ids in many.items():
            await self._w.add_links(ds, _link(ds, name), rid, ids)
        return self._emit(ds, rid, ChangeKind.CREATE, None, created_values(ds, row, many))

    async def update(self, dataset: str, record_id: int, changes: Mapping[str, object]) -> Record:
        """Change some fields of a record."""
        ds = self._svc.registry.get(dataset)
        old_rec = await self._existing(ds, record_id)
        row, many = await self._prepare(ds, changes, old_rec.id)
        merged = {**old_rec.values, **row}
        require(ds, merged, old_rec.id)
        if any(f in row for f in key_fields(ds)):
            await self._check_key(ds, merged, old_rec.id)
        await self._w.update(ds, old_rec.id, changed_fields(old_rec.values, row))
        old, new = dict(old_rec.values), merged
        for name, ids in many.items():
            link = _link(ds, name)
            before = await self._w.linked_ids(ds, link, old_rec.id)
            await self._w.remove_links(ds, link, old_rec.id, [i for i in before if i not in ids])
            await self._w.add_links(ds, link, old_rec.id, ids)
            old[name], new[name] = sorted(before), sorted(set(ids))
        return self._emit(ds, old_rec.id, ChangeKind.UPDATE, old, new)

    async def upsert(self, dataset: str, values: Mapping[str, object]) -> Record:
        """Update the record with the same key, or create one."""
        ds = self._svc.registry.get(dataset)
        fields = matchable_key_fields(ds, "; use create")
        row, _ = await self._prepare(ds, {k: v for k, v in values.items() if k in fields}, None)
        key = upsert_key(ds, row)
        found = await self._w.find_by_key(ds, key)
        if found is None:
            return await self.create(dataset, values)
        rest = {k: v for k, v in values.items() if k not in key}
        return await self.update(dataset, found.id, rest)

    async def delete(self, dataset: str, record_id: int) -> None:
        """Delete a record (refused while other records' links point at it)."""
        ds = self._svc.registry.get(dataset)
        rec = await self._existing(ds, record_id)
        refuse_referenced(ds, rec.id, await self._w.referrers(ds, rec.id))
        await self._w.delete(ds, rec.id)
        self._exists.discard((ds.name, int(rec.id)))
        self._emit(ds, rec.id, ChangeKind.DELETE, dict(rec.values), None)

    async def create_many(
        self, dataset: str, rows: Sequence[Mapping[str, object]], *, vouched: bool = False
    ) -> list[Record]:
        """Create several records of one dataset with a few statements in all.

        Each row is validated as :meth:`create` does (fields, types, required
        values, keys, link targets), but link targets are checked with one
        query per target dataset, keys with one query for the whole list (and
        against each other), and the rows are inserted with one batched
        statement. Nothing is written unless every row is valid. One event per
        record, in row order.

        ``vouched``: the caller vouches that the keys are new and the link
        targets exist (ids it created or read in this transaction, fresh
        unique keys), so the two look-up queries are skipped; fields, types and
        required values are still checked, and the database's unique and
        foreign-key constraints still refuse a broken promise (an integrity
        error that rolls the transaction back). For internal bulk writers
        (message tracking) only.

        Raises:
            RecordError: A row is invalid or links to a record that does not exist.
            ConflictError: A key is taken, or two rows have the same key.
        """
        ds = self._svc.registry.get(dataset)
        targets = VouchedTargets() if vouched else PendingTargets()
        prepared: list[tuple[dict[str, object], dict[str, list[RecordId]]]] = []
        shape: Shape | None = None
        for values in rows:
            # Vouched rows of one shape: one type test per value (shapes.py); any doubt
            # about a row, and every row of other callers, takes the generic path.
            if vouched and (shape is None or shape.fields != tuple(values)):
                shape = self._svc.shapes.get(ds, tuple(values))
            fast = shape.fast_row(values) if vouched and shape is not None else None
            if fast is None:
                fast = await self._prepare(ds, values, None, targets)
                require(ds, fast[0], None)
            prepared.append(fast)
        if not vouched:
            await self._check_targets(ds, targets)
            await self._check_keys(ds, [row for row, _ in prepared])
        ids = await self._w.insert_many(ds, [row for row, _ in prepared])
        self._exists.update((ds.name, int(rid)) for rid in ids)
        pairs: dict[str, list[tuple[RecordId, RecordId]]] = {}
        for rid, (_, many) in zip(ids, prepared, strict=True):
            for name, linked in many.items():
                pairs.setdefault(name, []).extend((rid, t) for t in linked)
        for name, linked_pairs in pairs.items():
            await self._w.insert_links(ds, _link(ds, name), linked_pairs)
        blank = dict.fromkeys(column_fields(ds))
        at = self._svc.clock.now()
        return [
            self._emit(ds, rid, ChangeKind.CREATE, None, created_values(ds, row, many, blank), at)
            for rid, (row, many) in zip(ids, prepared, strict=True)
        ]

    async def update_many(
        self, dataset: str, changes: Sequence[tuple[int, Mapping[str, object]]]
    ) -> list[Record]:
        """Change several records of one dataset with a few statements in all.

        Each change is validated as :meth:`update` does; the records are read
        with one query, link targets checked with one query per target
        dataset, and the changes written with one batched statement per set
        of changed fields. A change that touches an m:n link or a key field
        makes the whole list go through :meth:`update`, one by one (same
        result, more statements). Returns each record as it is after its
        change, in the order of ``changes``.

        Raises:
            RecordNotFoundError: A record does not exist.
            RecordError: A change is invalid.
        """
        ds = self._svc.registry.get(dataset)
        if needs_one_by_one(ds, (values for _, values in changes)):
            return [await self.update(dataset, rid, values) for rid, values in changes]
        wanted = [RecordId(rid) for rid, _ in changes if is_record_id(rid)]
        first = await self._w.get_many(ds, wanted)
        current = {rid: dict(rec.values) for rid, rec in first.items()}
        targets = PendingTargets()
        out: list[Record] = []
        for rid, values in changes:
            if not is_record_id(rid) or RecordId(rid) not in current:
                raise RecordNotFoundError(f"{ds.name} record {rid} does not exist")
            row, _ = await self._prepare(ds, values, rid, targets)
            merged = current[RecordId(rid)] | row
            require(ds, merged, rid)
            current[RecordId(rid)] = merged
            out.append(Record(dataset=ds.name, id=RecordId(rid), values=merged))
        await self._check_targets(ds, targets)
        self._exists.update((ds.name, int(rid)) for rid in first)
        order = list(dict.fromkeys(rec.id for rec in out))  # one write per record, final values
        await self._w.update_many(
            ds, [(rid, changed_fields(first[rid].values, current[rid])) for rid in order]
        )
        for rid in order:
            self._emit(ds, rid, ChangeKind.UPDATE, dict(first[rid].values), current[rid])
        return out

    async def find_many(self, dataset: str, keys: Sequence[Mapping[str, object]]) -> list[Record]:
        """The records (as this transaction sees them) whose key equals one of ``keys``.

        Each key names every key field of the dataset; values are typed as
        :meth:`create` types them (a to-one link takes a record id). A key
        with an empty value matches nothing.

        Raises:
            RecordError: The dataset has no key, or a key is malformed.
        """
        ds = self._svc.registry.get(dataset)
        fields = matchable_key_fields(ds)
        typed: list[Mapping[str, object]] = []
        for key in keys:
            require_key_names(ds, fields, key)
            row, _ = await self._prepare(ds, key, None, PendingTargets())
            if not any(v is None for v in row.values()):
                typed.append({f: row[f] for f in fields})
        found = await self._w.find_many_by_key(ds, typed)
        self._exists.update((ds.name, int(rec.id)) for rec in found)
        return found

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
        link = relink_target(ds, link_name, len(targets), add=add, record_id=record_id)
        if holds_reference(ds.name, link):
            return await self.update(dataset, record_id, {link.name: targets[0] if add else None})
        rec = await self._existing(ds, record_id)
        ids = await self._link_targets(ds, link.name, link.target, targets, rec.id)
        before = await self._w.linked_ids(ds, link, rec.id)
        if add:
            await self._w.add_links(ds, link, rec.id, ids)
        else:
            await self._w.remove_links(ds, link, rec.id, ids)
        old = {**rec.values, link.name: sorted(before)}
        new = {**rec.values, link.name: linked_after(before, ids, add=add)}
        return self._emit(ds, rec.id, ChangeKind.UPDATE, old, new)

    # --- helpers ----------------------------------------------------------

    async def _existing(self, ds: Dataset, record_id: int) -> Record:
        rec = await self._w.get(ds, RecordId(record_id)) if is_record_id(record_id) else None
        if rec is None:
            raise RecordNotFoundError(f"{ds.name} record {record_id} does not exist")
        return rec

    async def _prepare(
        self,
        ds: Dataset,
        values: Mapping[str, object],
        record_id: int | None,
        targets: PendingTargets | None = None,
    ) -> tuple[dict[str, object], dict[str, list[RecordId]]]:
        """Split input into column values and m:n target lists, typed and resolved.

        With ``targets``, record ids are collected there to be checked later
        (:meth:`_check_targets`) instead of one query per value.
        """
        row: dict[str, object] = {}
        many: dict[str, list[RecordId]] = {}
        for name, value in values.items():
            attr = ds.attribute(name)
            if attr is not None:
                row[name] = coerce(ds.name, attr, value, record_id)
                continue
            link = link_for_value(ds, name, value, record_id)
            if link.cardinality is Cardinality.MANY_TO_MANY:
                refs = cast(Sequence[object], value)  # link_for_value made sure it is a list
                many[name] = await self._link_targets(
                    ds, name, link.target, refs, record_id, targets
                )
            elif value is None:
                row[name] = None
            else:
                row[name] = (
                    await self._link_targets(ds, name, link.target, [value], record_id, targets)
                )[0]
        return row, many

    async def _link_targets(
        self,
        ds: Dataset,
        field: str,
        target_name: str,
        refs: Sequence[object],
        record_id: int | None,
        pending: PendingTargets | None = None,
    ) -> list[RecordId]:
        target = self._svc.registry.get(target_name)
        ids: list[RecordId] = []
        for ref in refs:
            parsed = parse_ref(ds, target, ref, field=field, record_id=record_id)
            if isinstance(parsed, Mapping):
                ids.append(await self._resolve_key(ds, field, target, parsed, record_id))
            else:
                ids.append(parsed)
        if pending is not None:
            pending.add(target, ids, field, record_id)
        else:
            await self._check_exist(ds, target, ids, field, record_id)
        return ids

    async def _check_exist(
        self,
        ds: Dataset,
        target: Dataset,
        ids: Sequence[RecordId],
        field: str,
        record_id: int | None,
    ) -> None:
        """Refuse ids that are not records of ``target`` (one query for those not seen yet)."""
        unknown = unseen(target.name, ids, self._exists)
        missing = await self._w.missing(target, unknown) if unknown else []
        if missing:
            raise dangling(ds, target.name, missing[0], field=field, record_id=record_id)
        self._exists.update((target.name, int(i)) for i in unknown)

    async def _check_targets(self, ds: Dataset, targets: PendingTargets) -> None:
        """Check the link targets a bulk write collected: one query per target dataset."""
        for target, refs in targets.by_target.values():
            unknown = unseen(target.name, (rid for rid, _, _ in refs), self._exists)
            missing = set(await self._w.missing(target, sorted(unknown))) if unknown else set()
            refuse_dangling(ds, target.name, refs, missing)
            self._exists.update((target.name, int(i)) for i in unknown)

    async def _check_keys(self, ds: Dataset, rows: Sequence[Mapping[str, object]]) -> None:
        """Refuse new rows whose key is taken or repeated (one query for the whole list)."""
        if not ds.has_key:
            return
        keys = new_keys(ds, rows)
        for row in keys.partial:  # NULL never matches in SQL: ask one by one
            await self._check_key(ds, row, None)
        found = await self._w.find_many_by_key(ds, keys.complete) if keys.complete else []
        if found:
            rec = found[0]
            key = {f: rec.values.get(f) for f in key_fields(ds)}
            refuse_taken_key(ds, key, rec, None)

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
            raise no_record_with_key(ds, target.name, ref, field=field, record_id=record_id)
        self._exists.add((target.name, int(found.id)))
        return found.id

    async def _check_key(
        self, ds: Dataset, values: Mapping[str, object], record_id: int | None
    ) -> None:
        if not ds.has_key:
            return
        key = {f: values.get(f) for f in key_fields(ds)}
        refuse_taken_key(ds, key, await self._w.find_by_key(ds, key), record_id)

    def _emit(
        self,
        ds: Dataset,
        rid: RecordId,
        kind: ChangeKind,
        old: Values | None,
        new: Values | None,
        at: datetime | None = None,
    ) -> Record:
        event = RecordChanged(
            dataset=ds.name,
            record_id=rid,
            kind=kind,
            old=old,
            new=new,
            origin=self._origin,
            at=self._svc.clock.now() if at is None else at,
        )
        self._changes.add(event)
        return written_record(event)


def _link(ds: Dataset, name: str) -> Link:
    """A link the values were already checked against (by :meth:`Batch._prepare`)."""
    link = ds.link(name)
    assert link is not None
    return link


class DatasetService:
    """Validated, transactional, announced writes; and reads."""

    def __init__(self, registry: Registry, store: RecordStore, clock: Clock) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self.shapes = Shapes()
        self._subscribers = Subscribers()

    def subscribe(self, callback: Subscriber, datasets: Iterable[str] | None = None) -> None:
        """Call ``callback`` with every :class:`RecordChanged`, after commit, in write order.

        ``datasets``: only the events of these datasets (a subscriber that looks
        at two datasets is then not called for the thousands of others a second).
        """
        self._subscribers.add(callback, datasets)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback`` (an adapter runtime that stops); unknown ones are ignored."""
        self._subscribers.remove(callback)

    @asynccontextmanager
    async def batch(
        self, origin: Origin | None = None, name: str = "write_records"
    ) -> AsyncIterator[Batch]:
        """Several writes in one transaction; events go out after it commits."""
        async with self.store.write(name) as writer:
            b = Batch(self, writer, origin or Origin())
            writer.after_commit(lambda: self._subscribers.publish(b.events))
            yield b

    @asynccontextmanager
    async def group(self, name: str) -> AsyncIterator[None]:
        """One transaction that the batches opened inside it (by this task) join.

        For a writer with many small writes queued (clinical presence): one commit for
        all instead of one each. They commit or roll back together; each batch's events
        go out after the group commits, in write order.
        """
        async with self.store.write(name):
            yield

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
        return await self.store.query(ds, typed_query(ds, query))
