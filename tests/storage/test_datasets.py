"""Generated dataset tables on SQLite and PostgreSQL: names, links, constraints, migration."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.clock import FakeClock
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
    RecordId,
)
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.errors import ConflictError
from carewire.storage import Database, migrate
from carewire.storage.datasets import (
    SqlDatasetStore,
    join_table_name,
    ref_column,
    table_name,
)
from tests.datasets import conftest as datasets_conftest
from tests.datasets.conftest import Platform

platform = datasets_conftest.platform


async def _tables(db: Database) -> set[str]:
    def run(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    async with db.read("list_tables") as conn:
        return await conn.run_sync(run)


async def _columns(db: Database, table: str) -> set[str]:
    def run(conn: Connection) -> set[str]:
        return {c["name"] for c in inspect(conn).get_columns(table)}

    async with db.read("list_columns") as conn:
        return await conn.run_sync(run)


async def _follow(
    p: Platform, dataset: str, link: str, ids: Sequence[int]
) -> dict[RecordId, list[RecordId]]:
    ds = p.registry.get(dataset)
    ln = ds.link(link)
    assert ln is not None
    return await p.store.follow(ds, ln, [RecordId(i) for i in ids])


# --- names ------------------------------------------------------------------------------


def test_table_names() -> None:
    assert table_name("BEDS") == "ds_beds"
    assert table_name("CALL_LOG_HISTORY") == "ds_call_log_history"
    assert join_table_name("BEDS", "locs") == "dsj_beds__locs"
    assert join_table_name("TEMPLATES", "template_category") == "dsj_templates__template_category"
    assert ref_column("room") == "room_id"
    assert ref_column("from") == "from_id"


def test_names_up_to_63_characters_are_kept() -> None:
    name = "X" * 60
    assert table_name(name) == "ds_" + "x" * 60
    assert len(table_name(name)) == 63
    assert join_table_name("AB", "c" * 55) == "dsj_ab__" + "c" * 55


def test_long_names_are_truncated_deterministically() -> None:
    long_a = "A" * 63
    long_b = "A" * 62 + "B"
    name_a = table_name(long_a)
    assert len(name_a) == 63
    assert name_a == table_name(long_a)
    assert name_a.startswith("ds_" + "a" * 50)
    assert name_a != table_name(long_b)
    assert len(table_name(long_b)) == 63
    join = join_table_name(long_a, "l" * 63)
    assert len(join) == 63
    assert join == join_table_name(long_a, "l" * 63)
    assert join != join_table_name(long_a, "l" * 62 + "m")
    assert join.startswith("dsj_" + "a" * 50)


async def test_a_dataset_with_the_longest_names_works(platform: Platform) -> None:
    name = "W" * 48
    key, many, one = "k" * 63, "u" * 63, "f" * 63
    await platform.registry.create_dataset(
        name,
        attributes=(Attribute(name=key, type=AttrType.STRING, is_key=True),),
        links=(
            Link(
                name=many,
                target=DatasetName("UNITS"),
                reverse="r" * 63,
                cardinality=Cardinality.MANY_TO_MANY,
            ),
            Link(
                name=one,
                target=DatasetName("FACILITIES"),
                reverse="g" * 63,
                cardinality=Cardinality.MANY_TO_ONE,
            ),
        ),
    )
    tables = await _tables(platform.db)
    assert table_name(name) in tables
    # ("UNITS", "rrr…") sorts before ("WWW…", "uuu…"): UNITS names the join table.
    assert join_table_name("UNITS", "r" * 63) in tables
    assert len(join_table_name("UNITS", "r" * 63)) == 63
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    unit = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    rec = await svc.create(name, {key: "a", many: [unit.id], one: facility.id})
    assert await _follow(platform, "UNITS", "r" * 63, [unit.id]) == {unit.id: [rec.id]}
    assert await _follow(platform, "FACILITIES", "g" * 63, [facility.id]) == {facility.id: [rec.id]}
    with pytest.raises(ConflictError):
        await svc.create(name, {key: "a"})


# --- follow ------------------------------------------------------------------------------


async def test_follow_many_to_one_and_its_reverse(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    icu = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    ward = await svc.create("UNITS", {"name": "Ward", "facility": facility.id})
    rooms = [
        await svc.create("ROOMS", {"room_number": n, "facility": facility.id, "unit": u})
        for n, u in (("1", icu.id), ("2", None), ("3", icu.id))
    ]
    r1, r2, r3 = (r.id for r in rooms)

    assert await _follow(platform, "ROOMS", "unit", [r3, r2, r1, 999]) == {
        r3: [icu.id],
        r2: [],
        r1: [icu.id],
        999: [],
    }
    assert await _follow(platform, "UNITS", "rooms", [icu.id, ward.id, 999]) == {
        icu.id: [r1, r3],
        ward.id: [],
        999: [],
    }
    assert await _follow(platform, "FACILITIES", "rooms", [facility.id]) == {
        facility.id: [r1, r2, r3]
    }
    assert await _follow(platform, "UNITS", "rooms", []) == {}


async def test_follow_many_to_many_from_both_sides(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    room = await svc.create("ROOMS", {"room_number": "1", "facility": facility.id})
    locs = [
        (await svc.create("LOCATIONS", {"location_id": n, "facility": facility.id})).id
        for n in ("L1", "L2", "L3")
    ]
    b1 = await svc.create("BEDS", {"bed_number": "A", "room": room.id, "locs": [locs[2], locs[0]]})
    b2 = await svc.create("BEDS", {"bed_number": "B", "room": room.id, "locs": [locs[0]]})

    assert await _follow(platform, "BEDS", "locs", [b1.id, b2.id]) == {
        b1.id: [locs[0], locs[2]],
        b2.id: [locs[0]],
    }
    assert await _follow(platform, "LOCATIONS", "places", locs) == {
        locs[0]: [b1.id, b2.id],
        locs[1]: [],
        locs[2]: [b1.id],
    }


async def test_follow_a_self_many_to_many(platform: Platform) -> None:
    svc = platform.service
    a1, a2, a3 = [(await svc.create("ACTORS", {"uid": u})).id for u in ("a1", "a2", "a3")]
    await svc.update("ACTORS", a1, {"favorites": [a3, a2]})
    await svc.link("ACTORS", a2, "favorite_of", [a3])
    assert await _follow(platform, "ACTORS", "favorites", [a1, a2, a3]) == {
        a1: [a2, a3],
        a2: [],
        a3: [a2],
    }
    assert await _follow(platform, "ACTORS", "favorite_of", [a1, a2, a3]) == {
        a1: [],
        a2: [a1, a3],
        a3: [a1],
    }
    await svc.delete("ACTORS", a2)
    assert await _follow(platform, "ACTORS", "favorites", [a1, a3]) == {a1: [a3], a3: []}


async def test_follow_a_self_many_to_one(platform: Platform) -> None:
    svc = platform.service
    t = "2026-01-01T08:00:00Z"
    base = {"received_at": t, "sent_at": t}
    m1 = await svc.create("MESSAGES", {"uuid": "m1", **base})
    m2 = await svc.create("MESSAGES", {"uuid": "m2", "acknowledges": m1.id, **base})
    m3 = await svc.create("MESSAGES", {"uuid": "m3", "acknowledges": m1.id, **base})
    assert await _follow(platform, "MESSAGES", "acknowledges", [m2.id, m1.id]) == {
        m2.id: [m1.id],
        m1.id: [],
    }
    assert await _follow(platform, "MESSAGES", "acknowledged", [m1.id, m2.id]) == {
        m1.id: [m2.id, m3.id],
        m2.id: [],
    }


async def test_follow_one_to_one_from_both_sides(platform: Platform) -> None:
    svc = platform.service
    p1, p2 = [(await svc.create("PLACES", {})).id for _ in range(2)]
    patient = await svc.create("PATIENTS", {"mrn": "1", "current_place": p2})
    alone = await svc.create("PATIENTS", {"mrn": "2"})
    assert "current_place_id" in await _columns(platform.db, "ds_patients")
    assert "patient_id" not in await _columns(platform.db, "ds_places")
    assert await _follow(platform, "PATIENTS", "current_place", [patient.id, alone.id]) == {
        patient.id: [p2],
        alone.id: [],
    }
    assert await _follow(platform, "PLACES", "patient", [p1, p2]) == {p1: [], p2: [patient.id]}


async def test_reads_in_chunks(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    unit = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    ids = list(range(1, 1201))
    follow = await _follow(platform, "UNITS", "rooms", [unit.id, *ids])
    assert len(follow) == 1200  # unit.id is one of ids
    assert all(v == [] for v in follow.values())
    units = platform.registry.get("UNITS")
    found = await platform.store.get_many(units, [RecordId(i) for i in ids])
    assert list(found) == [unit.id]
    assert found[RecordId(unit.id)].values["name"] == "ICU"
    async with platform.store.write("check_missing") as w:
        missing = await w.missing(units, [RecordId(i) for i in ids])
    assert len(missing) == 1199
    assert unit.id not in missing


# --- writer helpers ---------------------------------------------------------------------------


async def test_referrers_and_missing(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    idle = await svc.create("FACILITIES", {"name": "North"})
    await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    room = await svc.create("ROOMS", {"room_number": "1", "facility": facility.id})
    await svc.create("ROOMS", {"room_number": "2", "facility": facility.id})
    beds = [(await svc.create("BEDS", {"bed_number": n, "room": room.id})).id for n in "AB"]
    loc = await svc.create("LOCATIONS", {"location_id": "L", "facility": idle.id})
    await svc.link("LOCATIONS", loc.id, "places", beds)
    place = await svc.create("PLACES", {})
    await svc.create("PATIENTS", {"mrn": "1", "current_place": place.id})
    reg = platform.registry

    async with platform.store.write("check_links") as w:
        assert sorted(await w.referrers(reg.get("FACILITIES"), RecordId(facility.id))) == [
            ("ROOMS.facility", 2),
            ("UNITS.facility", 1),
        ]
        assert await w.referrers(reg.get("FACILITIES"), RecordId(idle.id)) == [
            ("LOCATIONS.facility", 1)
        ]
        assert await w.referrers(reg.get("ROOMS"), RecordId(room.id)) == [("BEDS.room", 2)]
        # m:n rows are not references that block a delete.
        assert await w.referrers(reg.get("BEDS"), RecordId(beds[0])) == []
        assert await w.referrers(reg.get("PLACES"), RecordId(place.id)) == [
            ("PATIENTS.current_place", 1)
        ]
        assert await w.referrers(reg.get("ROOMS"), RecordId(999)) == []
        ids = [RecordId(i) for i in (beds[1], 999, beds[0], 998)]
        assert await w.missing(reg.get("BEDS"), ids) == [999, 998]
        assert await w.missing(reg.get("BEDS"), []) == []


async def test_add_and_remove_link_rows(platform: Platform) -> None:
    svc = platform.service
    a1, a2, a3 = [(await svc.create("ACTORS", {"uid": u})).id for u in ("a1", "a2", "a3")]
    actors = platform.registry.get("ACTORS")
    favorites = actors.link("favorites")
    assert favorites is not None
    r = [RecordId(i) for i in (a1, a2, a3)]
    async with platform.store.write("links") as w:
        await w.add_links(actors, favorites, r[0], [r[1], r[2], r[1]])
        await w.add_links(actors, favorites, r[0], [r[2]])  # existing rows are left alone
        assert await w.linked_ids(actors, favorites, r[0]) == [a2, a3]
        await w.remove_links(actors, favorites, r[0], [r[1], RecordId(999)])
        assert await w.linked_ids(actors, favorites, r[0]) == [a3]
    assert await _follow(platform, "ACTORS", "favorite_of", [a3]) == {a3: [a1]}


async def test_the_database_enforces_keys_and_references(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    room = await svc.create("ROOMS", {"room_number": "1", "facility": facility.id})
    beds = platform.registry.get("BEDS")
    async with platform.store.write("insert_bed") as w:
        first = await w.insert(beds, {"bed_number": "A", "room": room.id})
    with pytest.raises(ConflictError):
        async with platform.store.write("insert_duplicate_bed") as w:
            await w.insert(beds, {"bed_number": "A", "room": room.id})
    with pytest.raises(ConflictError):
        async with platform.store.write("insert_dangling_bed") as w:
            await w.insert(beds, {"bed_number": "B", "room": 999})
    assert await platform.store.count(beds) == 1
    stored = await platform.store.get(beds, first)
    assert stored is not None
    assert stored.values == {"bed_number": "A", "room": room.id}
    assert await platform.store.find_by_key(beds, {"bed_number": "A", "room": room.id}) == stored
    assert await platform.store.find_by_key(beds, {"bed_number": "A", "room": 999}) is None
    assert await platform.store.get(beds, RecordId(999)) is None


# --- schema changes at run time -----------------------------------------------------------------


def _others(p: Platform, *names: str) -> list[Dataset]:
    return [ds for ds in p.registry.all() if ds.name not in names]


def _grown(ds: Dataset, *, attribute: Attribute | None = None, link: Link | None = None) -> Dataset:
    return Dataset(
        name=ds.name,
        description=ds.description,
        attributes=ds.attributes if attribute is None else (*ds.attributes, attribute),
        links=ds.links if link is None else (*ds.links, link),
        is_builtin=ds.is_builtin,
    )


async def test_add_an_attribute_column_to_a_table_with_rows(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    grown = _grown(
        platform.registry.get("FACILITIES"),
        attribute=Attribute(name="opened", type=AttrType.DATETIME),
    )
    await platform.store.apply([*_others(platform, "FACILITIES"), grown], [grown.name])
    assert await _columns(platform.db, "ds_facilities") == {"id", "name", "opened"}
    stored = await platform.store.get(grown, RecordId(facility.id))
    assert stored is not None
    assert stored.values == {"name": "Main", "opened": None}
    assert [d for d in await platform.store.load_definitions() if d.name == grown.name] == [grown]


async def test_add_a_reference_column_to_a_table_with_rows(
    request: pytest.FixtureRequest, platform: Platform
) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    site = await svc.create("SITES", {"name": "North"})
    link = Link(
        name="site",
        target=DatasetName("SITES"),
        reverse="facilities",
        cardinality=Cardinality.MANY_TO_ONE,
    )
    facilities = _grown(platform.registry.get("FACILITIES"), link=link)
    sites = _grown(
        platform.registry.get("SITES"),
        link=Link(
            name="facilities",
            target=DatasetName("FACILITIES"),
            reverse="site",
            cardinality=Cardinality.ONE_TO_MANY,
        ),
    )
    await platform.store.apply(
        [*_others(platform, "FACILITIES", "SITES"), facilities, sites],
        [facilities.name, sites.name],
    )
    assert "site_id" in await _columns(platform.db, "ds_facilities")
    async with platform.store.write("set_site") as w:
        await w.update(facilities, RecordId(facility.id), {"site": site.id})
        assert await w.referrers(sites, RecordId(site.id)) == [("FACILITIES.site", 1)]
    assert await platform.store.follow(sites, sites.links[-1], [RecordId(site.id)]) == {
        site.id: [facility.id]
    }


# --- migration 0002 ---------------------------------------------------------------------------


async def _populate(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        store = SqlDatasetStore(db)
        registry = Registry(store)
        await registry.load()
        await registry.create_dataset(
            "TAGS",
            attributes=(Attribute(name="name", type=AttrType.STRING, is_key=True),),
            links=(
                Link(
                    name="units",
                    target=DatasetName("UNITS"),
                    reverse="tags",
                    cardinality=Cardinality.MANY_TO_MANY,
                ),
            ),
        )
        svc = DatasetService(registry, store, FakeClock())
        facility = await svc.create("FACILITIES", {"name": "Main"})
        unit = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
        await svc.create("TAGS", {"name": "t", "units": [unit.id]})
        t = "2026-01-01T08:00:00Z"
        m1 = await svc.create("MESSAGES", {"uuid": "m1", "received_at": t, "sent_at": t})
        await svc.create(
            "MESSAGES", {"uuid": "m2", "received_at": t, "sent_at": t, "acknowledges": m1.id}
        )
    finally:
        await db.close()


async def test_migration_0002_downgrade_drops_generated_tables(db_url: str) -> None:
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    await _populate(db_url)

    await migrate.downgrade(db_url, "0001_core")

    assert await migrate.current(db_url) == "0001_core"
    db = await Database.open(db_url)
    try:
        tables = await _tables(db)
        assert not {t for t in tables if t.startswith(("ds_", "dsj_"))}
        assert not tables & {"dataset_definitions", "rules", "rule_schedule", "adapters"}
        assert "api_tokens" not in tables
        assert tables  # the core tables stay
    finally:
        await db.close()

    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        store = SqlDatasetStore(db)
        registry = Registry(store)
        await registry.load()
        assert "TAGS" not in registry
        assert len(registry.all()) == 31
        assert await store.count(registry.get("UNITS")) == 0
    finally:
        await db.close()

    await _populate(db_url)
    await migrate.downgrade(db_url, "base")
    db = await Database.open(db_url)
    try:
        assert not {t for t in await _tables(db) if t != "alembic_version"}
    finally:
        await db.close()
