"""The one way to write dataset records: validate, write in one transaction, announce.

Every create, update, upsert, delete, link and unlink goes through
:class:`DatasetService`. Values are checked (known fields, types, required
values, unique keys, link targets that exist) with errors naming the dataset,
record and field; each call, or each :meth:`DatasetService.batch`, is one
transaction; and after it commits every written record produces exactly one
:class:`~carewire.datasets.model.RecordChanged` for the subscribers (the
rules engine, the XMPP adapter).

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
        # (dataset, id) of records this transaction created or saw exist: link checks skip them
        self._exists: set[tuple[str, int]] = set()

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
        self._exists.add((ds.name, int(rid)))
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
        self._exists.discard((ds.name, int(rec.id)))
        self._emit(ds, rec.id, ChangeKind.DELETE, dict(rec.values), None)

    async def create_many(self, dataset: str, rows: Sequence[Mapping[str, object]]) -> list[Record]:
        """Create several records of one dataset with a few statements in all.

        Each row is validated as :meth:`create` does (fields, types, required
        values, keys, link targets), but link targets are checked with one
        query per target dataset, keys with one query for the whole list (and
        against each other), and the rows are inserted with one batched
        statement. Nothing is written unless every row is valid. One event per
        record, in row order.

        Raises:
            RecordError: A row is invalid or links to a record that does not exist.
            ConflictError: A key is taken, or two rows have the same key.
        """
        ds = self._svc.registry.get(dataset)
        targets = _Targets()
        prepared: list[tuple[dict[str, object], dict[str, list[RecordId]]]] = []
        for values in rows:
            row, many = await self._prepare(ds, values, None, targets)
            self._require(ds, row, None)
            prepared.append((row, many))
        await self._check_targets(ds, targets)
        await self._check_keys(ds, [row for row, _ in prepared])
        ids = await self._w.insert_many(ds, [row for row, _ in prepared])
        self._exists.update((ds.name, int(rid)) for rid in ids)
        pairs: dict[str, list[tuple[RecordId, RecordId]]] = {}
        for rid, (_, many) in zip(ids, prepared, strict=True):
            for name, linked in many.items():
                pairs.setdefault(name, []).extend((rid, t) for t in linked)
        for name, linked_pairs in pairs.items():
            link = ds.link(name)
            assert link is not None
            await self._w.insert_links(ds, link, linked_pairs)
        blank: dict[str, object] = {name: None for name in _column_fields(ds)}
        return [
            self._emit(
                ds,
                rid,
                ChangeKind.CREATE,
                None,
                blank | row | {name: sorted(linked) for name, linked in many.items()},
            )
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
        slow = set(_key_fields(ds)) | {
            ln.name for ln in ds.links if not holds_reference(ds.name, ln)
        }
        if any(slow.intersection(values) for _, values in changes):
            return [await self.update(dataset, rid, values) for rid, values in changes]
        wanted = [RecordId(rid) for rid, _ in changes if is_record_id(rid)]
        first = await self._w.get_many(ds, wanted)
        current = {rid: dict(rec.values) for rid, rec in first.items()}
        targets = _Targets()
        out: list[Record] = []
        for rid, values in changes:
            if not is_record_id(rid) or RecordId(rid) not in current:
                raise RecordNotFoundError(f"{ds.name} record {rid} does not exist")
            row, _ = await self._prepare(ds, values, rid, targets)
            merged = current[RecordId(rid)] | row
            self._require(ds, merged, rid)
            current[RecordId(rid)] = merged
            out.append(Record(dataset=ds.name, id=RecordId(rid), values=merged))
        await self._check_targets(ds, targets)
        self._exists.update((ds.name, int(rid)) for rid in first)
        order = list(dict.fromkeys(rec.id for rec in out))  # one write per record, final values
        await self._w.update_many(
            ds,
            [
                (rid, {k: v for k, v in current[rid].items() if first[rid].values.get(k) != v})
                for rid in order
            ],
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
        fields = _key_fields(ds)
        if not fields:
            raise RecordError(ds.name, "has no key, so records cannot be matched")
        typed: list[Mapping[str, object]] = []
        for key in keys:
            if set(key) != set(fields):
                raise RecordError(ds.name, f"a key names exactly {', '.join(fields)}")
            row, _ = await self._prepare(ds, key, None, _Targets())
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
        self,
        ds: Dataset,
        values: Mapping[str, object],
        record_id: int | None,
        targets: _Targets | None = None,
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
                    else (
                        await self._link_targets(ds, name, link.target, [value], record_id, targets)
                    )[0]
                )
            elif link.cardinality is Cardinality.MANY_TO_MANY:
                if not isinstance(value, list | tuple):
                    raise RecordError(
                        ds.name, "an m:n link takes a list", field=name, record=record_id
                    )
                many[name] = await self._link_targets(
                    ds, name, link.target, value, record_id, targets
                )
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
        pending: _Targets | None = None,
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
        unknown = [i for i in dict.fromkeys(ids) if (target.name, int(i)) not in self._exists]
        missing = await self._w.missing(target, unknown) if unknown else []
        if missing:
            raise RecordError(
                ds.name,
                f"{target.name} record {missing[0]} does not exist",
                field=field,
                record=record_id,
                code="dangling-link",
            )
        self._exists.update((target.name, int(i)) for i in unknown)

    async def _check_targets(self, ds: Dataset, targets: _Targets) -> None:
        """Check the link targets a bulk write collected: one query per target dataset."""
        for target, refs in targets.by_target.values():
            ids = [rid for rid, _, _ in refs]
            unknown = {i for i in ids if (target.name, int(i)) not in self._exists}
            missing = set(await self._w.missing(target, sorted(unknown))) if unknown else set()
            for rid, field, record_id in refs:
                if rid in missing:
                    raise RecordError(
                        ds.name,
                        f"{target.name} record {rid} does not exist",
                        field=field,
                        record=record_id,
                        code="dangling-link",
                    )
            self._exists.update((target.name, int(i)) for i in unknown)

    async def _check_keys(self, ds: Dataset, rows: Sequence[Mapping[str, object]]) -> None:
        """Refuse new rows whose key is taken or repeated (one query for the whole list)."""
        if not ds.has_key:
            return
        fields = _key_fields(ds)
        seen: set[tuple[object, ...]] = set()
        lookup: list[Mapping[str, object]] = []
        for row in rows:
            key = tuple(row.get(f) for f in fields)
            if key in seen:
                raise ConflictError(
                    f"{ds.name}: two new records have the key {_shown(fields, key)}",
                    code="duplicate-key",
                )
            seen.add(key)
            if any(v is None for v in key):  # NULL never matches in SQL: ask one by one
                await self._check_key(ds, row, None)
            else:
                lookup.append(dict(zip(fields, key, strict=True)))
        found = await self._w.find_many_by_key(ds, lookup) if lookup else []
        if found:
            rec = found[0]
            key = tuple(rec.values.get(f) for f in fields)
            raise ConflictError(
                f"{ds.name}: record {rec.id} already has the key {_shown(fields, key)}",
                code="duplicate-key",
            )

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
        if found is not None:
            self._exists.add((target.name, int(found.id)))
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


class _Targets:
    """Link targets named by a bulk write, to be checked together."""

    __slots__ = ("by_target",)

    def __init__(self) -> None:
        self.by_target: dict[str, tuple[Dataset, list[tuple[RecordId, str, int | None]]]] = {}

    def add(
        self, target: Dataset, ids: Sequence[RecordId], field: str, record_id: int | None
    ) -> None:
        """Remember that ``field`` of a row names ``ids`` of ``target``."""
        refs = self.by_target.setdefault(target.name, (target, []))[1]
        refs.extend((rid, field, record_id) for rid in ids)


def _shown(fields: Sequence[str], key: Sequence[object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(fields, key, strict=True))


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
