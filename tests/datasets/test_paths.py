"""Attribute paths: parsing against the built-in definitions, and resolving on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import pytest

from carewire.datasets.model import (
    AttrType,
    Dataset,
    DatasetName,
    Link,
    Record,
    RecordId,
)
from carewire.datasets.paths import PathError, PathResolver, Step, parse_path
from carewire.datasets.query import Page, Query
from carewire.datasets.registry import Registry, UnknownDatasetError
from carewire.datasets.store import RecordStore, RecordWriter
from carewire.errors import ValidationError
from tests.datasets.conftest import Platform

# --- the definitions alone ----------------------------------------------------


class _NoSchema:
    """A schema store with nothing saved and no tables: the built-in definitions alone."""

    async def load_definitions(self) -> list[Dataset]:
        return []

    async def apply(self, datasets: Sequence[Dataset], changed: Sequence[DatasetName]) -> None:
        return None

    async def count(self, ds: Dataset) -> int:
        return 0


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """The built-in definitions, loaded without a database or a running event loop."""
    reg = Registry(_NoSchema())
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(reg.load())
    finally:
        loop.close()
    yield reg


def test_direct_attribute(registry: Registry) -> None:
    path = parse_path(registry, "BEDS", "bed_number")
    assert path.text == "bed_number"
    assert path.dataset == "BEDS"
    assert path.steps == ()
    assert path.attribute is not None
    assert path.attribute.name == "bed_number"
    assert path.attribute.type is AttrType.STRING
    assert path.is_direct
    assert not path.is_many
    assert path.target == "BEDS"


def test_to_one_link(registry: Registry) -> None:
    path = parse_path(registry, "BEDS", "room.room_number")
    assert [(s.dataset, s.link.name) for s in path.steps] == [("BEDS", "room")]
    assert path.steps[0].holds_reference
    assert not path.steps[0].is_to_many
    assert path.attribute is not None and path.attribute.name == "room_number"
    assert not path.is_many
    assert not path.is_direct
    assert path.target == "ROOMS"


def test_reverse_link_is_many(registry: Registry) -> None:
    path = parse_path(registry, "ROOMS", "beds.bed_number")
    assert path.steps[0].link.target == "BEDS"
    assert path.steps[0].is_to_many
    assert not path.steps[0].holds_reference
    assert path.is_many


def test_multi_hop_many(registry: Registry) -> None:
    path = parse_path(registry, "BEDS", "locs.assignments.usr.login")
    assert [(s.dataset, s.link.name) for s in path.steps] == [
        ("BEDS", "locs"),
        ("LOCATIONS", "assignments"),
        ("ASSIGNMENTS", "usr"),
    ]
    assert path.is_many
    assert path.target == "USERS"


def test_one_to_one_from_the_side_without_the_reference_is_to_one(registry: Registry) -> None:
    owning = parse_path(registry, "PATIENTS", "current_place.id")
    other = parse_path(registry, "PLACES", "patient.mrn")
    assert owning.steps[0].holds_reference
    assert not other.steps[0].holds_reference
    assert not other.is_many
    assert not owning.is_many


@pytest.mark.parametrize(
    ("dataset", "text", "target", "is_many"),
    [
        ("BEDS", "room", "ROOMS", False),
        ("BEDS", "locs", "LOCATIONS", True),
        ("BEDS", "id", "BEDS", False),
        ("BEDS", "room.id", "ROOMS", False),
        ("ROOMS", "beds.id", "BEDS", True),
    ],
)
def test_paths_ending_at_a_link_or_id_yield_ids(
    registry: Registry, dataset: str, text: str, target: str, is_many: bool
) -> None:
    path = parse_path(registry, dataset, text)
    assert path.attribute is None
    assert path.target == target
    assert path.is_many is is_many
    assert path.is_direct is (text == "id")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "BEDS: path '': the path is empty"),
        (".room", "BEDS: path '.room': segment 1 is empty"),
        ("room..room_number", "BEDS: path 'room..room_number': segment 2 is empty"),
        ("room.", "BEDS: path 'room.': segment 2 is empty"),
        (
            "room.room_numbr",
            "BEDS: path 'room.room_numbr': ROOMS has no attribute or link 'room_numbr'",
        ),
        ("bogus", "BEDS: path 'bogus': BEDS has no attribute or link 'bogus'"),
        (
            "bed_number.x",
            "BEDS: path 'bed_number.x': 'bed_number' is an attribute of BEDS, "
            "so nothing can follow it",
        ),
        (
            "room.room_number.x",
            "BEDS: path 'room.room_number.x': 'room_number' is an attribute of ROOMS, "
            "so nothing can follow it",
        ),
        ("id.room", "BEDS: path 'id.room': 'id' is the record id, so nothing can follow it"),
        ("Room", "BEDS: path 'Room': BEDS has no attribute or link 'Room'"),
    ],
)
def test_invalid_paths(registry: Registry, text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        parse_path(registry, "BEDS", text)
    assert str(info.value) == message
    assert info.value.code == "invalid-path"
    assert isinstance(info.value, ValidationError)


def test_unknown_start_dataset(registry: Registry) -> None:
    with pytest.raises(UnknownDatasetError):
        parse_path(registry, "NOPE", "x")


def test_step_and_path_are_frozen_values(registry: Registry) -> None:
    a = parse_path(registry, "BEDS", "room.room_number")
    b = parse_path(registry, "BEDS", "room.room_number")
    assert a == b
    assert isinstance(a.steps[0], Step)
    with pytest.raises(AttributeError):
        a.text = "x"  # type: ignore[misc]


# --- resolving on a database --------------------------------------------------


class _Spy:
    """The real record store, noting each ``follow`` and ``get_many`` call."""

    def __init__(self, inner: RecordStore) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str, list[int]]] = []

    def write(self, name: str) -> AbstractAsyncContextManager[RecordWriter]:
        return self._inner.write(name)

    async def get(self, ds: Dataset, record_id: RecordId) -> Record | None:
        return await self._inner.get(ds, record_id)

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        self.calls.append(("get_many", ds.name, sorted(ids)))
        return await self._inner.get_many(ds, ids)

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        return await self._inner.find_by_key(ds, key)

    async def follow(
        self, ds: Dataset, link: Link, ids: Sequence[RecordId]
    ) -> dict[RecordId, list[RecordId]]:
        self.calls.append(("follow", f"{ds.name}.{link.name}", sorted(ids)))
        return await self._inner.follow(ds, link, ids)

    async def query(self, ds: Dataset, query: Query) -> Page:
        return await self._inner.query(ds, query)


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """A small hospital: records by a short name, and a resolver over a spying store."""

    platform: Platform
    spy: _Spy
    resolver: PathResolver
    records: dict[str, Record]

    def id(self, name: str) -> int:
        return self.records[name].id

    async def resolve(self, name: str, text: str) -> object:
        rec = self.records[name]
        return await self.resolver.resolve(
            rec, parse_path(self.platform.registry, rec.dataset, text)
        )


async def _build(platform: Platform) -> dict[str, Record]:
    """Facility Main; unit ICU; rooms 101 (in ICU) and 102 (no unit); beds A, B in 101, C in 102.

    Bed A is at locations L1 and L2, bed B at L2, bed C nowhere. Assignments:
    a1 L1→bob (active), a2 L2→alice, a3 L2→bob (active), a4 L1→nobody. Place P1
    holds patient M1; place P2 holds nobody.
    """
    svc, r = platform.service, {}
    r["main"] = await svc.create("FACILITIES", {"name": "Main"})
    main = r["main"].id
    r["icu"] = await svc.create("UNITS", {"name": "ICU", "facility": main})
    r["101"] = await svc.create(
        "ROOMS", {"room_number": "101", "facility": main, "unit": r["icu"].id}
    )
    r["102"] = await svc.create("ROOMS", {"room_number": "102", "facility": main})
    for loc in ("L1", "L2", "L3"):
        r[loc] = await svc.create("LOCATIONS", {"location_id": loc, "facility": main})
    r["A"] = await svc.create(
        "BEDS", {"bed_number": "A", "room": r["101"].id, "locs": [r["L2"].id, r["L1"].id]}
    )
    r["B"] = await svc.create(
        "BEDS", {"bed_number": "B", "room": r["101"].id, "locs": [r["L2"].id]}
    )
    r["C"] = await svc.create("BEDS", {"bed_number": "C", "room": r["102"].id})
    for login in ("alice", "bob", "carol"):
        r[login] = await svc.create("USERS", {"login": login})
    r["nurse"] = await svc.create("FUNCTIONAL_ROLES", {"name": "Nurse", "facility": main})
    plan = [
        ("a1", "L1", "bob", "active"),
        ("a2", "L2", "alice", None),
        ("a3", "L2", "bob", "active"),
    ]
    for aid, loc, user, state in plan:
        r[aid] = await svc.create(
            "ASSIGNMENTS",
            {
                "assignment_id": aid,
                "interface_id": "hl7",
                "level": "primary",
                "state": state,
                "location": r[loc].id,
                "usr": r[user].id,
                "role": r["nurse"].id,
            },
        )
    r["a4"] = await svc.create(
        "ASSIGNMENTS",
        {"assignment_id": "a4", "interface_id": "hl7", "level": "primary", "location": r["L1"].id},
    )
    r["P1"] = await svc.create("PLACES", {})
    r["P2"] = await svc.create("PLACES", {})
    r["M1"] = await svc.create("PATIENTS", {"mrn": "M1", "current_place": r["P1"].id})
    return r


@pytest.fixture
async def world(platform: Platform) -> World:
    """The small hospital of :func:`_build`, on the parametrized database."""
    records = await _build(platform)
    spy = _Spy(platform.store)
    return World(
        platform=platform,
        spy=spy,
        resolver=PathResolver(platform.registry, spy),
        records=records,
    )


async def test_direct_values_need_no_reads(world: World) -> None:
    assert await world.resolve("A", "bed_number") == "A"
    assert await world.resolve("A", "id") == world.id("A")
    assert world.spy.calls == []


async def test_to_one(world: World) -> None:
    assert await world.resolve("A", "room.room_number") == "101"
    assert await world.resolve("A", "room.unit.name") == "ICU"
    assert await world.resolve("A", "room.facility.name") == "Main"
    assert await world.resolve("icu", "facility.name") == "Main"


async def test_unset_to_one_link_gives_none(world: World) -> None:
    assert await world.resolve("C", "room.unit.name") is None
    assert await world.resolve("C", "room.unit") is None
    assert await world.resolve("C", "room.unit.id") is None
    assert await world.resolve("a4", "usr.login") is None


async def test_path_ending_at_a_link_gives_ids(world: World) -> None:
    assert await world.resolve("A", "room") == world.id("101")
    assert await world.resolve("A", "room.id") == world.id("101")
    assert await world.resolve("A", "locs") == [world.id("L1"), world.id("L2")]
    assert await world.resolve("101", "beds") == [world.id("A"), world.id("B")]
    assert await world.resolve("A", "locs.assignments") == [
        world.id("a1"),
        world.id("a2"),
        world.id("a3"),
        world.id("a4"),
    ]


async def test_reverse_to_many(world: World) -> None:
    assert await world.resolve("101", "beds.bed_number") == ["A", "B"]
    assert await world.resolve("102", "beds.bed_number") == ["C"]
    assert await world.resolve("main", "rooms.room_number") == ["101", "102"]
    assert await world.resolve("icu", "rooms.beds.bed_number") == ["A", "B"]


async def test_many_to_many_both_ways(world: World) -> None:
    assert await world.resolve("A", "locs.location_id") == ["L1", "L2"]
    assert await world.resolve("L2", "places.bed_number") == ["A", "B"]
    assert await world.resolve("L3", "places.bed_number") == []
    assert await world.resolve("C", "locs.location_id") == []


async def test_multi_hop_to_many_in_id_order_without_duplicates(world: World) -> None:
    # a1 reaches bob before a2 reaches alice, a3 reaches bob again and a4 nobody:
    # one entry per user, in user id order.
    assert await world.resolve("A", "locs.assignments.usr.login") == ["alice", "bob"]
    assert await world.resolve("B", "locs.assignments.usr.login") == ["alice", "bob"]
    assert await world.resolve("C", "locs.assignments.usr.login") == []


async def test_many_drops_none_values_but_not_equal_ones(world: World) -> None:
    # a2 and a4 have no state; a1 and a3 are both "active" (two records, two entries).
    assert await world.resolve("A", "locs.assignments.state") == ["active", "active"]
    assert await world.resolve("L1", "assignments.usr.login") == ["bob"]


async def test_one_to_one_both_sides(world: World) -> None:
    assert await world.resolve("M1", "current_place") == world.id("P1")
    assert await world.resolve("P1", "patient.mrn") == "M1"
    assert await world.resolve("P1", "patient") == world.id("M1")
    assert await world.resolve("P2", "patient.mrn") is None


async def test_to_one_from_a_record_without_link_values_is_followed(world: World) -> None:
    bare = Record(dataset=DatasetName("BEDS"), id=RecordId(world.id("A")), values={})
    path = parse_path(world.platform.registry, "BEDS", "room.room_number")
    assert await world.resolver.resolve(bare, path) == "101"
    assert world.spy.calls[0] == ("follow", "BEDS.room", [world.id("A")])


async def test_resolve_all_batches_levels_and_shares_prefixes(world: World) -> None:
    registry = world.platform.registry
    texts = [
        "room.room_number",
        "room.unit.name",
        "room.room_number",
        "bed_number",
        "locs.assignments.usr.login",
        "locs.location_id",
    ]
    paths = [parse_path(registry, "BEDS", t) for t in texts]
    got = await world.resolver.resolve_all(world.records["A"], paths)
    assert got == {
        "room.room_number": "101",
        "room.unit.name": "ICU",
        "bed_number": "A",
        "locs.assignments.usr.login": ["alice", "bob"],
        "locs.location_id": ["L1", "L2"],
    }
    i = world.id
    assert world.spy.calls == [
        ("get_many", "ROOMS", [i("101")]),
        ("get_many", "UNITS", [i("icu")]),
        ("follow", "BEDS.locs", [i("A")]),
        ("follow", "LOCATIONS.assignments", [i("L1"), i("L2")]),
        ("follow", "ASSIGNMENTS.usr", [i("a1"), i("a2"), i("a3"), i("a4")]),
        ("get_many", "USERS", [i("alice"), i("bob")]),
        ("get_many", "LOCATIONS", [i("L1"), i("L2")]),
    ]


async def test_path_of_another_dataset_is_refused(world: World) -> None:
    path = parse_path(world.platform.registry, "ROOMS", "room_number")
    with pytest.raises(PathError, match=r"ROOMS: path 'room_number' cannot be read from a BEDS"):
        await world.resolver.resolve(world.records["A"], path)


# --- filtered link segments -------------------------------------------------------


def test_filtered_segment_parses(registry: Registry) -> None:
    path = parse_path(registry, "BEDS", "locs.assignments[level=1, state=active].usr.login")
    assert path.steps[1].where == (("level", "1"), ("state", "active"))
    assert path.steps[0].where == ()
    assert path.is_many


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("locs.assignments[level].usr.login", "'level' is not attribute=value"),
        ("locs.assignments[=1].usr.login", "is not attribute=value"),
        ("locs.assignments[level=1.usr.login", "write a filter as link[attribute=value,...]"),
        ("locs.assignments[nope=1].usr.login", "ASSIGNMENTS has no attribute 'nope'"),
        ("bed_number[x=1]", "only links can be filtered"),
    ],
)
def test_invalid_filters(registry: Registry, text: str, message: str) -> None:
    with pytest.raises(PathError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_path(registry, "BEDS", text)


async def test_filter_keeps_matching_records_only(world: World) -> None:
    # Bed A: a1 (L1, bob, active), a2 (L2, alice, no state), a3 (L2, bob, active), a4 (L1, nobody).
    assert await world.resolve("A", "locs.assignments[state=active].usr.login") == ["bob"]
    assert await world.resolve("A", "locs.assignments[state=next].usr.login") == []
    assert await world.resolve("A", "locs.assignments[level=primary].assignment_id") == [
        "a1",
        "a2",
        "a3",
        "a4",
    ]
    assert await world.resolve(
        "A", "locs.assignments[level=primary,state=active].assignment_id"
    ) == ["a1", "a3"]
