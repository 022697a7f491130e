"""Carrying out an ADT plan through the dataset service, inside the message's transaction.

Locations are looked up by their keys (FACILITIES.name; ROOMS by room number
within the facility; BEDS by bed number within the room). With
``create_locations`` off (the default) the hospital's location datasets are
the reference and a location they do not hold is refused (AE, and the
transaction rolls back); with it on, missing facilities, units, rooms and beds
are created, and a room is moved to the unit PV1-3 names.

Bed ids are cached by location key (:class:`LocationCache`): each message then
costs the patient's write and the check that its bed exists, not three lookups.
The cache forgets everything when a location record changes in this process,
and entries older than a minute (a location changed by another process).

A40 merge (theory of operation): when only the prior patient (MRG-1) exists,
its MRN is changed to PID-3's, which keeps every link. When both exist, every
record linking to the prior patient (ASSIGNMENTS.patient, CONVERSATIONS.patient,
and any link an administrator added) is re-linked to the surviving one, the
survivor takes the prior patient's bed and place when it has none, and the
prior record is deleted; rules see the updates and the delete. When neither
exists, or the prior one is already gone, there is nothing to merge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.adt_message import Location
from carewire.adapters.hl7.adt_plan import BedChange, Merge, PatientWrite, Plan
from carewire.datasets.model import Cardinality, Record, RecordChanged, holds_reference
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query
from carewire.datasets.service import Batch, DatasetService

PATIENTS = "PATIENTS"
BEDS = "BEDS"
ROOMS = "ROOMS"
UNITS = "UNITS"
FACILITIES = "FACILITIES"
LOCATION_DATASETS = frozenset({FACILITIES, UNITS, ROOMS, BEDS})
CACHE_SECONDS = 60.0

BedKey = tuple[str, str, str]


@dataclass(slots=True)
class LocationCache:
    """BEDS ids by (facility, room, bed) number, for the ADT feed's lookups.

    Attributes:
        max_age: Seconds an entry is trusted (changes made by other processes).
    """

    max_age: float = CACHE_SECONDS
    _beds: dict[BedKey, tuple[int, float]] = field(default_factory=dict)

    def on_change(self, event: RecordChanged) -> None:
        """A dataset subscriber: any change to a location dataset empties the cache."""
        if event.dataset in LOCATION_DATASETS and self._beds:
            self._beds.clear()

    def get(self, key: BedKey, now: float) -> int | None:
        """The cached id, unless absent or too old."""
        hit = self._beds.get(key)
        if hit is None or now - hit[1] > self.max_age:
            return None
        return hit[0]

    def put(self, key: BedKey, bed_id: int, now: float) -> None:
        """Remember a bed found (or created) at ``now``."""
        self._beds[key] = (bed_id, now)


async def apply_plan(
    b: Batch,
    plan: Plan,
    *,
    datasets: DatasetService,
    create_locations: bool,
    cache: LocationCache,
    now: float,
) -> None:
    """Write ``plan`` in the open batch ``b``.

    Raises:
        Rejected: AE, a location is unknown (and may not be created).
        CarewireError: The data platform refused a write (the caller answers AE).
    """
    for merge in plan.merges:
        await _merge(b, datasets, merge)
    for write in plan.patients:
        values: dict[str, object] = {"mrn": write.mrn, **write.values}
        if write.bed is BedChange.CLEAR:
            values["bed"] = None
        elif write.bed is BedChange.SET:
            values["bed"] = await _cached_bed_id(b, write.location, create_locations, cache, now)
        await b.upsert(PATIENTS, values)


async def apply_many(
    b: Batch, writes: Sequence[PatientWrite], *, cache: LocationCache, now: float
) -> None:
    """Write several patients (distinct MRNs, existing locations) with a few statements.

    Raises:
        Rejected: AE, a location is unknown.
        CarewireError: The data platform refused a write.
    """
    rows: list[tuple[str, dict[str, object]]] = []
    for write in writes:
        values = dict(write.values)
        if write.bed is BedChange.CLEAR:
            values["bed"] = None
        elif write.bed is BedChange.SET:
            values["bed"] = await _cached_bed_id(b, write.location, False, cache, now)
        rows.append((write.mrn, values))
    found = {
        str(r.get("mrn")): int(r.id)
        for r in await b.find_many(PATIENTS, [{"mrn": mrn} for mrn, _ in rows])
    }
    updates = [(found[mrn], values) for mrn, values in rows if mrn in found]
    creates = [{"mrn": mrn, **values} for mrn, values in rows if mrn not in found]
    if updates:
        await b.update_many(PATIENTS, updates)
    if creates:
        await b.create_many(PATIENTS, creates)


async def _cached_bed_id(
    b: Batch, location: Location | None, create: bool, cache: LocationCache, now: float
) -> int | None:
    if location is None or not location.bed:
        return None
    key = (location.facility, location.room, location.bed)
    found = cache.get(key, now)
    if found is None:
        found = await bed_id(b, location, create=create)
        if found is not None:
            cache.put(key, found, now)
    return found


async def bed_id(b: Batch, location: Location | None, *, create: bool) -> int | None:
    """The BEDS id of ``location`` (None when it names no bed).

    Raises:
        Rejected: AE, the facility, room or bed is unknown and ``create`` is off.
    """
    if location is None or not location.bed:
        return None
    facility = await _record(
        b, FACILITIES, {"name": location.facility}, create, f"facility {location.facility!r}"
    )
    unit = None
    if create and location.point_of_care:
        unit = await _record(
            b, UNITS, {"name": location.point_of_care, "facility": facility.id}, True, ""
        )
    room_key = {"room_number": location.room, "facility": facility.id}
    room = await _record(
        b,
        ROOMS,
        room_key if unit is None else {**room_key, "unit": unit.id},
        create,
        f"room {location.room!r} in facility {location.facility!r}",
        key=room_key,
    )
    if unit is not None and room.get("unit") != unit.id:
        await b.update(ROOMS, room.id, {"unit": unit.id})
    bed = await _record(
        b,
        BEDS,
        {"bed_number": location.bed, "room": room.id},
        create,
        f"bed {location.bed!r} in room {location.room!r} of facility {location.facility!r}",
    )
    return int(bed.id)


async def _record(
    b: Batch,
    dataset: str,
    values: Mapping[str, object],
    create: bool,
    what: str,
    *,
    key: Mapping[str, object] | None = None,
) -> Record:
    """The record with this key; created from ``values`` when allowed, else AE."""
    found = await b.find_many(dataset, [key if key is not None else values])
    if found:
        return found[0]
    if not create:
        raise Rejected(
            ack=AckCode.AE,
            error=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            reason=f"unknown {what}",
        )
    return await b.create(dataset, values)


async def _merge(b: Batch, datasets: DatasetService, merge: Merge) -> None:
    if merge.prior_mrn == merge.mrn:
        return
    found = {
        str(r.get("mrn")): r
        for r in await b.find_many(PATIENTS, [{"mrn": merge.prior_mrn}, {"mrn": merge.mrn}])
    }
    prior, survivor = found.get(merge.prior_mrn), found.get(merge.mrn)
    if prior is None:
        return
    if survivor is None:
        await b.update(PATIENTS, prior.id, {"mrn": merge.mrn})
        return
    await _relink(b, datasets, prior, survivor)
    await b.delete(PATIENTS, prior.id)


async def _relink(b: Batch, datasets: DatasetService, prior: Record, survivor: Record) -> None:
    """Point every link at ``prior`` to ``survivor``; carry over its own to-one links."""
    patients = datasets.registry.get(PATIENTS)
    carried: dict[str, object] = {}
    released: dict[str, object] = {}
    for link in patients.links:
        if holds_reference(patients.name, link) and prior.get(link.name) is not None:
            if survivor.get(link.name) is None:
                carried[link.name] = prior.get(link.name)
            if link.cardinality is Cardinality.ONE_TO_ONE:
                released[link.name] = None  # a 1:1 target may be linked from one record only
    if released:
        await b.update(PATIENTS, prior.id, released)
    if carried:
        await b.update(PATIENTS, survivor.id, carried)
    for ds in datasets.registry.all():
        for link in ds.links:
            if link.target == PATIENTS and holds_reference(ds.name, link):
                await _move_referrers(b, datasets, ds.name, link.name, prior, survivor)


async def _move_referrers(
    b: Batch, datasets: DatasetService, dataset: str, link: str, prior: Record, survivor: Record
) -> None:
    # The query reads what is committed, which these updates do not change: page by offset.
    offset = 0
    while True:
        page = await datasets.query(
            dataset,
            Query(
                filters=(Filter(field=link, op=FilterOp.EQ, value=int(prior.id)),),
                offset=offset,
                limit=MAX_LIMIT,
            ),
        )
        for rec in page.records:
            await b.update(dataset, rec.id, {link: int(survivor.id)})
        offset += len(page.records)
        if not page.records or offset >= page.total:
            return
