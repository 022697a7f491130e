"""The registry on SQLite and PostgreSQL: load, create datasets, add fields, refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.datasets.definitions import DefinitionError, builtin_datasets
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
)
from carewire.datasets.registry import Registry, UnknownDatasetError
from carewire.datasets.service import DatasetService
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError, NotFoundError
from carewire.storage import Database
from carewire.storage.datasets import SqlDatasetStore, join_table_name, table_name
from tests.datasets.conftest import Platform


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


async def _fresh(platform: Platform) -> tuple[SqlDatasetStore, Registry]:
    """A second store and registry on the same database, as after a restart."""
    store = SqlDatasetStore(platform.db)
    registry = Registry(store)
    await registry.load()
    return store, registry


def _definitions(datasets: list[Dataset]) -> dict[str, Dataset]:
    return {ds.name: ds for ds in datasets}


def _link(name: str, target: str, reverse: str, cardinality: Cardinality) -> Link:
    return Link(name=name, target=DatasetName(target), reverse=reverse, cardinality=cardinality)


WARD_ATTRIBUTES = (
    Attribute(name="code", type=AttrType.STRING, is_key=True),
    Attribute(name="capacity", type=AttrType.INTEGER, is_required=True),
    Attribute(name="opened", type=AttrType.DATE),
)


async def _create_wards(registry: Registry) -> Dataset:
    """WARDS: n:1 to FACILITIES (reverse ``wards``), m:n to UNITS (reverse ``wards``)."""
    return await registry.create_dataset(
        "WARDS",
        description="wards of a facility",
        attributes=WARD_ATTRIBUTES,
        links=(
            _link("facility", "FACILITIES", "wards", Cardinality.MANY_TO_ONE),
            _link("units", "UNITS", "wards", Cardinality.MANY_TO_MANY),
        ),
    )


# --- load -------------------------------------------------------------------------


async def test_load_creates_every_table(platform: Platform) -> None:
    registry = platform.registry
    assert [ds.name for ds in registry.all()] == sorted(ds.name for ds in builtin_datasets())
    assert len(registry.all()) == 31
    assert "BEDS" in registry
    assert "NOPE" not in registry
    assert registry.get("BEDS") == next(d for d in builtin_datasets() if d.name == "BEDS")
    tables = await _tables(platform.db)
    for ds in builtin_datasets():
        assert table_name(ds.name) in tables
    assert join_table_name("BEDS", "locs") in tables
    assert join_table_name("ACTORS", "favorite_of") in tables
    assert join_table_name("ACTORS", "favorites") not in tables  # one table per m:n pair
    assert len({t for t in tables if t.startswith("dsj_")}) == 11
    assert await _columns(platform.db, "ds_beds") == {"id", "bed_number", "room_id"}
    assert await _columns(platform.db, "ds_places") == {"id"}
    assert "current_place_id" in await _columns(platform.db, "ds_patients")
    saved = _definitions(await platform.store.load_definitions())
    assert saved == {ds.name: ds for ds in builtin_datasets()}


async def test_get_unknown_dataset(platform: Platform) -> None:
    with pytest.raises(UnknownDatasetError) as info:
        platform.registry.get("NOPE")
    assert info.value.code == "unknown-dataset"
    assert isinstance(info.value, NotFoundError)
    assert "'NOPE'" in str(info.value)


async def test_load_twice_is_idempotent(platform: Platform) -> None:
    facility = await platform.service.create("FACILITIES", {"name": "Main"})
    before = await platform.store.load_definitions()
    tables = await _tables(platform.db)

    await platform.registry.load()
    store, registry = await _fresh(platform)

    assert registry.all() == platform.registry.all()
    assert _definitions(await store.load_definitions()) == _definitions(before)
    assert await _tables(platform.db) == tables
    service = DatasetService(registry, store, platform.clock)
    assert (await service.get("FACILITIES", facility.id)).values["name"] == "Main"


async def test_a_created_dataset_survives_a_new_registry(platform: Platform) -> None:
    await _create_wards(platform.registry)
    facility = await platform.service.create("FACILITIES", {"name": "Main"})
    ward = await platform.service.create(
        "WARDS", {"code": "W1", "capacity": 12, "facility": facility.id}
    )

    store, registry = await _fresh(platform)

    wards = registry.get("WARDS")
    assert wards == platform.registry.get("WARDS")
    assert not wards.is_builtin
    assert wards.description == "wards of a facility"
    facilities = registry.get("FACILITIES")
    assert facilities.is_builtin
    assert facilities.link("wards") is not None
    service = DatasetService(registry, store, platform.clock)
    assert (await service.get("WARDS", ward.id)).values == {
        "code": "W1",
        "capacity": 12,
        "opened": None,
        "facility": facility.id,
    }
    wards_link = facilities.link("wards")
    assert wards_link is not None
    follow = await store.follow(facilities, wards_link, [facility.id])
    assert follow == {facility.id: [ward.id]}


# --- create_dataset ------------------------------------------------------------------


async def test_create_dataset_adds_reverses_and_tables(platform: Platform) -> None:
    changes: list[int] = []
    platform.registry.on_change(lambda: changes.append(1))
    wards = await _create_wards(platform.registry)

    assert changes == [1]
    assert wards.name == "WARDS"
    assert wards.attributes == WARD_ATTRIBUTES
    assert [ln.name for ln in wards.links] == ["facility", "units"]
    assert platform.registry.get("WARDS") == wards
    reverse = platform.registry.get("FACILITIES").link("wards")
    assert reverse == Link(
        name="wards",
        target=DatasetName("WARDS"),
        reverse="facility",
        cardinality=Cardinality.ONE_TO_MANY,
    )
    units_reverse = platform.registry.get("UNITS").link("wards")
    assert units_reverse is not None
    assert units_reverse.cardinality is Cardinality.MANY_TO_MANY
    tables = await _tables(platform.db)
    assert "ds_wards" in tables
    assert {join_table_name("UNITS", "wards"), join_table_name("WARDS", "units")} & tables
    assert await _columns(platform.db, "ds_wards") == {
        "id",
        "code",
        "capacity",
        "opened",
        "facility_id",
    }
    saved = _definitions(await platform.store.load_definitions())
    assert saved["WARDS"] == wards
    assert saved["FACILITIES"] == platform.registry.get("FACILITIES")


async def test_created_dataset_is_usable_by_the_service(platform: Platform) -> None:
    await _create_wards(platform.registry)
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    unit = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    ward = await svc.create(
        "WARDS",
        {
            "code": "W1",
            "capacity": "12",
            "opened": "2020-05-01",
            "facility": {"name": "Main"},
            "units": [unit.id],
        },
    )
    assert ward.values["capacity"] == 12
    assert ward.values["units"] == [unit.id]
    with pytest.raises(ConflictError) as info:
        await svc.create("WARDS", {"code": "W1", "capacity": 3})
    assert info.value.code == "duplicate-key"
    with pytest.raises(RecordError) as err:
        await svc.create("WARDS", {"code": "W2"})
    assert err.value.field == "capacity"
    units = platform.registry.get("UNITS")
    wards_link = units.link("wards")
    assert wards_link is not None
    assert await platform.store.follow(units, wards_link, [unit.id]) == {unit.id: [ward.id]}


async def test_create_dataset_with_a_self_link(platform: Platform) -> None:
    ds = await platform.registry.create_dataset(
        "TEAMS",
        attributes=(Attribute(name="name", type=AttrType.STRING, is_key=True),),
        links=(_link("parent", "TEAMS", "children", Cardinality.MANY_TO_ONE),),
    )
    assert [ln.name for ln in ds.links] == ["parent", "children"]
    svc = platform.service
    root = await svc.create("TEAMS", {"name": "root"})
    child = await svc.create("TEAMS", {"name": "child", "parent": {"name": "root"}})
    children = ds.link("children")
    assert children is not None
    assert await platform.store.follow(ds, children, [root.id]) == {root.id: [child.id]}


async def test_create_dataset_with_a_one_to_many_link(platform: Platform) -> None:
    await platform.registry.create_dataset(
        "SHIFTS",
        attributes=(Attribute(name="name", type=AttrType.STRING, is_key=True),),
        links=(_link("staff", "USERS", "shift", Cardinality.ONE_TO_MANY),),
    )
    assert "shift_id" in await _columns(platform.db, "ds_users")
    shift = await platform.service.create("SHIFTS", {"name": "night"})
    user = await platform.service.create("USERS", {"login": "ann", "shift": shift.id})
    assert user.values["shift"] == shift.id


async def test_create_dataset_keyed_by_a_link(platform: Platform) -> None:
    wards = await platform.registry.create_dataset(
        "WARDS",
        attributes=(Attribute(name="code", type=AttrType.STRING, is_key=True),),
        links=(
            Link(
                name="facility",
                target=DatasetName("FACILITIES"),
                reverse="wards",
                cardinality=Cardinality.MANY_TO_ONE,
                is_key=True,
            ),
        ),
    )
    assert [ln.name for ln in wards.key_links] == ["facility"]
    reverse = platform.registry.get("FACILITIES").link("wards")
    assert reverse is not None
    assert reverse.is_reverse_key


async def test_create_duplicate_dataset(platform: Platform) -> None:
    with pytest.raises(ConflictError, match=r"dataset BEDS already exists"):
        await platform.registry.create_dataset("BEDS")
    await platform.registry.create_dataset("WARDS")
    with pytest.raises(ConflictError, match=r"dataset WARDS already exists"):
        await platform.registry.create_dataset("WARDS")


@pytest.mark.parametrize(
    ("name", "attributes", "expected"),
    [
        pytest.param("wards", (), "a dataset name is upper-case", id="dataset-name"),
        pytest.param(
            "WARDS",
            (Attribute(name="Code", type=AttrType.STRING),),
            "WARDS.Code: a name is lower-case",
            id="attribute-name",
        ),
        pytest.param(
            "WARDS",
            (Attribute(name="id", type=AttrType.INTEGER),),
            "WARDS.id: 'id' is reserved",
            id="reserved",
        ),
        pytest.param(
            "WARDS",
            (
                Attribute(name="code", type=AttrType.STRING),
                Attribute(name="code", type=AttrType.INTEGER),
            ),
            "WARDS.code: the name is used twice",
            id="duplicate",
        ),
    ],
)
async def test_create_dataset_with_invalid_names(
    platform: Platform, name: str, attributes: tuple[Attribute, ...], expected: str
) -> None:
    tables = await _tables(platform.db)
    with pytest.raises(DefinitionError, match=expected):
        await platform.registry.create_dataset(name, attributes=attributes)
    assert name not in platform.registry
    assert await _tables(platform.db) == tables
    assert name not in _definitions(await platform.store.load_definitions())


async def test_create_dataset_with_unknown_target(platform: Platform) -> None:
    with pytest.raises(DefinitionError, match=r"WARDS.nope: links to unknown dataset NOPE"):
        await platform.registry.create_dataset(
            "WARDS", links=(_link("nope", "NOPE", "wards", Cardinality.MANY_TO_ONE),)
        )
    assert "WARDS" not in platform.registry


async def test_create_dataset_whose_reverse_name_is_taken(platform: Platform) -> None:
    before = platform.registry.get("FACILITIES")
    with pytest.raises(DefinitionError, match=r"FACILITIES.rooms: the name is taken"):
        await platform.registry.create_dataset(
            "WARDS", links=(_link("facility", "FACILITIES", "rooms", Cardinality.MANY_TO_ONE),)
        )
    with pytest.raises(DefinitionError, match=r"FACILITIES.name: the name is taken"):
        await platform.registry.create_dataset(
            "WARDS", links=(_link("facility", "FACILITIES", "name", Cardinality.MANY_TO_ONE),)
        )
    assert "WARDS" not in platform.registry
    assert platform.registry.get("FACILITIES") == before
    assert "ds_wards" not in await _tables(platform.db)


async def test_create_dataset_with_an_invalid_reverse_name(platform: Platform) -> None:
    with pytest.raises(DefinitionError, match=r"FACILITIES.Wards: a name is lower-case"):
        await platform.registry.create_dataset(
            "WARDS", links=(_link("facility", "FACILITIES", "Wards", Cardinality.MANY_TO_ONE),)
        )
    assert "WARDS" not in platform.registry
    assert platform.registry.get("FACILITIES").link("Wards") is None


async def test_join_table_names_do_not_collide(platform: Platform) -> None:
    await platform.registry.create_dataset(
        "A", links=(_link("b_c", "UNITS", "a_list", Cardinality.MANY_TO_MANY),)
    )
    try:
        await platform.registry.create_dataset(
            "A_B", links=(_link("c", "UNITS", "ab_list", Cardinality.MANY_TO_MANY),)
        )
    except DefinitionError:
        return  # refusing is fine
    facility = await platform.service.create("FACILITIES", {"name": "Main"})
    unit = await platform.service.create("UNITS", {"name": "ICU", "facility": facility.id})
    a = await platform.service.create("A", {"b_c": [unit.id]})
    await platform.service.create("A_B", {})
    units = platform.registry.get("UNITS")
    a_list, ab_list = units.link("a_list"), units.link("ab_list")
    assert a_list is not None
    assert ab_list is not None
    assert await platform.store.follow(units, a_list, [unit.id]) == {unit.id: [a.id]}
    assert await platform.store.follow(units, ab_list, [unit.id]) == {unit.id: []}


async def test_reference_index_names_do_not_collide(platform: Platform) -> None:
    await platform.registry.create_dataset(
        "A", links=(_link("b_c", "UNITS", "a_list", Cardinality.MANY_TO_ONE),)
    )
    try:
        await platform.registry.create_dataset(
            "A_B", links=(_link("c", "UNITS", "ab_list", Cardinality.MANY_TO_ONE),)
        )
    except DefinitionError:
        return  # refusing is fine
    assert "A_B" in platform.registry


# --- add_attribute / add_link -------------------------------------------------------------


async def test_add_optional_attribute_to_a_dataset_with_records(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    updated = await platform.registry.add_attribute(
        "FACILITIES", Attribute(name="beds_total", type=AttrType.INTEGER)
    )
    assert updated.attribute("beds_total") is not None
    assert updated.is_builtin
    assert "beds_total" in await _columns(platform.db, "ds_facilities")
    assert (await svc.get("FACILITIES", facility.id)).values == {"name": "Main", "beds_total": None}
    await svc.update("FACILITIES", facility.id, {"beds_total": "40"})
    assert (await svc.get("FACILITIES", facility.id)).values["beds_total"] == 40
    _, registry = await _fresh(platform)
    assert registry.get("FACILITIES").attribute("beds_total") is not None


async def test_add_key_attribute_is_refused(platform: Platform) -> None:
    with pytest.raises(DefinitionError, match=r"BEDS.ward: a dataset's key is fixed"):
        await platform.registry.add_attribute(
            "BEDS", Attribute(name="ward", type=AttrType.STRING, is_key=True)
        )
    assert platform.registry.get("BEDS").attribute("ward") is None


async def test_add_required_attribute(platform: Platform) -> None:
    # Allowed while the dataset is empty …
    await platform.registry.add_attribute(
        "DEVICES", Attribute(name="serial", type=AttrType.STRING, is_required=True)
    )
    with pytest.raises(RecordError) as info:
        await platform.service.create(
            "DEVICES", {"name": "d1", "status": "Registered", "vendor": "XMPP"}
        )
    assert info.value.field == "serial"
    assert info.value.code == "required"
    # … refused once it has records (they would have no value).
    await platform.service.create("FACILITIES", {"name": "Main"})
    with pytest.raises(DefinitionError) as err:
        await platform.registry.add_attribute(
            "FACILITIES", Attribute(name="code", type=AttrType.STRING, is_required=True)
        )
    assert "FACILITIES.code: cannot add a required attribute while FACILITIES has records" in str(
        err.value
    )
    assert platform.registry.get("FACILITIES").attribute("code") is None
    assert "code" not in await _columns(platform.db, "ds_facilities")


@pytest.mark.parametrize(
    ("attr", "expected"),
    [
        pytest.param(
            Attribute(name="bed_number", type=AttrType.STRING),
            "BEDS.bed_number: the name is used twice",
            id="taken-by-attribute",
        ),
        pytest.param(
            Attribute(name="room", type=AttrType.STRING),
            "BEDS.room: the name is used twice",
            id="taken-by-link",
        ),
        pytest.param(
            Attribute(name="room_id", type=AttrType.INTEGER),
            "BEDS.room_id: clashes with the column of link",
            id="clashes-with-link-column",
        ),
        pytest.param(
            Attribute(name="id", type=AttrType.INTEGER), "BEDS.id: 'id' is reserved", id="id"
        ),
        pytest.param(
            Attribute(name="Ward", type=AttrType.STRING),
            "BEDS.Ward: a name is lower-case",
            id="bad-name",
        ),
    ],
)
async def test_add_invalid_attribute(platform: Platform, attr: Attribute, expected: str) -> None:
    before = platform.registry.get("BEDS")
    with pytest.raises(DefinitionError, match=expected):
        await platform.registry.add_attribute("BEDS", attr)
    assert platform.registry.get("BEDS") == before
    assert _definitions(await platform.store.load_definitions())["BEDS"] == before


async def test_add_attribute_to_unknown_dataset(platform: Platform) -> None:
    with pytest.raises(UnknownDatasetError):
        await platform.registry.add_attribute("NOPE", Attribute(name="x", type=AttrType.STRING))
    with pytest.raises(UnknownDatasetError):
        await platform.registry.add_link(
            "NOPE", _link("x", "BEDS", "nopes", Cardinality.MANY_TO_MANY)
        )


async def test_add_many_to_many_link_between_datasets_with_records(platform: Platform) -> None:
    svc = platform.service
    user = await svc.create("USERS", {"login": "ann"})
    site = await svc.create("SITES", {"name": "North"})
    users = await platform.registry.add_link(
        "USERS", _link("sites", "SITES", "staff", Cardinality.MANY_TO_MANY)
    )
    staff = platform.registry.get("SITES").link("staff")
    assert staff is not None
    assert staff.cardinality is Cardinality.MANY_TO_MANY
    await svc.link("USERS", user.id, "sites", [site.id])
    sites = users.link("sites")
    assert sites is not None
    assert await platform.store.follow(users, sites, [user.id]) == {user.id: [site.id]}
    assert await platform.store.follow(platform.registry.get("SITES"), staff, [site.id]) == {
        site.id: [user.id]
    }


async def test_add_reference_link_to_a_table_with_records(
    request: pytest.FixtureRequest, platform: Platform
) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    await platform.registry.add_link(
        "FACILITIES", _link("site", "SITES", "facilities", Cardinality.MANY_TO_ONE)
    )
    assert "site_id" in await _columns(platform.db, "ds_facilities")
    assert (await svc.get("FACILITIES", facility.id)).values["site"] is None
    site = await svc.create("SITES", {"name": "North"})
    await svc.update("FACILITIES", facility.id, {"site": site.id})
    assert (await svc.get("FACILITIES", facility.id)).values["site"] == site.id


async def test_add_link_refusals(platform: Platform) -> None:
    registry = platform.registry
    before = registry.all()
    with pytest.raises(DefinitionError, match=r"FACILITIES.rooms: the name is taken"):
        await registry.add_link(
            "BEDS", _link("facility", "FACILITIES", "rooms", Cardinality.MANY_TO_MANY)
        )
    with pytest.raises(DefinitionError, match=r"BEDS.x: links to unknown dataset NOPE"):
        await registry.add_link("BEDS", _link("x", "NOPE", "beds", Cardinality.MANY_TO_ONE))
    with pytest.raises(DefinitionError, match=r"BEDS.room: the name is used twice"):
        await registry.add_link("BEDS", _link("room", "SITES", "beds", Cardinality.MANY_TO_MANY))
    with pytest.raises(DefinitionError, match=r"BEDS.Site: a name is lower-case"):
        await registry.add_link("BEDS", _link("Site", "SITES", "beds", Cardinality.MANY_TO_MANY))
    with pytest.raises(DefinitionError, match=r"a dataset's key is fixed"):
        await registry.add_link(
            "BEDS",
            Link(
                name="site",
                target=DatasetName("SITES"),
                reverse="beds",
                cardinality=Cardinality.MANY_TO_ONE,
                is_key=True,
            ),
        )
    assert registry.all() == before
    assert _definitions(await platform.store.load_definitions()) == {d.name: d for d in before}


# --- type changes and drops ---------------------------------------------------------------


async def test_a_stored_column_of_another_type_is_refused(platform: Platform) -> None:
    await platform.registry.create_dataset(
        "WARDS",
        attributes=(
            Attribute(name="code", type=AttrType.STRING, is_key=True),
            Attribute(name="capacity", type=AttrType.INTEGER),
        ),
    )
    ward = await platform.service.create("WARDS", {"code": "W1", "capacity": 12})
    wards = platform.registry.get("WARDS")
    as_text = Dataset(
        name=wards.name,
        attributes=(wards.attributes[0], Attribute(name="capacity", type=AttrType.STRING)),
    )
    datasets = [ds for ds in platform.registry.all() if ds.name != "WARDS"] + [as_text]

    with pytest.raises(DefinitionError) as info:
        await platform.store.apply(datasets, [DatasetName("WARDS")])

    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("WARDS.capacity: defined as String")
    assert "a type cannot be changed" in info.value.problems[0]
    # Nothing was saved or dropped; the store keeps working with the old definition.
    assert _definitions(await platform.store.load_definitions())["WARDS"] == wards
    assert await _columns(platform.db, "ds_wards") == {"id", "code", "capacity"}
    assert (await platform.service.get("WARDS", ward.id)).values == {"code": "W1", "capacity": 12}
    _, registry = await _fresh(platform)
    assert registry.get("WARDS") == wards


async def test_every_type_change_is_refused(platform: Platform) -> None:
    kinds = list(AttrType)
    attributes = tuple(Attribute(name=f"a_{i}", type=k) for i, k in enumerate(kinds))
    await platform.registry.create_dataset("TYPED", attributes=attributes)
    others = [ds for ds in platform.registry.all() if ds.name != "TYPED"]
    for i, kind in enumerate(kinds):
        for other in kinds:
            if other is kind:
                continue
            changed = list(attributes)
            changed[i] = Attribute(name=f"a_{i}", type=other)
            ds = Dataset(name=DatasetName("TYPED"), attributes=tuple(changed))
            with pytest.raises(DefinitionError, match=f"TYPED.a_{i}: defined as {other}"):
                await platform.store.apply([*others, ds], [DatasetName("TYPED")])


async def test_apply_never_drops(platform: Platform) -> None:
    await platform.registry.create_dataset(
        "WARDS", attributes=(Attribute(name="code", type=AttrType.STRING),)
    )
    await platform.service.create("WARDS", {"code": "W1"})
    without = [ds for ds in platform.registry.all() if ds.name != "WARDS"]
    await platform.store.apply(without, [])
    assert "ds_wards" in await _tables(platform.db)
    assert "WARDS" in _definitions(await platform.store.load_definitions())
    await platform.store.apply(platform.registry.all(), [])
    assert await platform.store.count(platform.registry.get("WARDS")) == 1


async def test_a_refused_apply_leaves_no_new_columns(
    request: pytest.FixtureRequest, platform: Platform
) -> None:
    await platform.registry.create_dataset(
        "WARDS", attributes=(Attribute(name="capacity", type=AttrType.INTEGER),)
    )
    facilities = platform.registry.get("FACILITIES")
    grown = Dataset(
        name=facilities.name,
        attributes=(*facilities.attributes, Attribute(name="beds_total", type=AttrType.INTEGER)),
        links=facilities.links,
        is_builtin=True,
    )
    retyped = Dataset(
        name=DatasetName("WARDS"),
        attributes=(Attribute(name="capacity", type=AttrType.STRING),),
    )
    others = [ds for ds in platform.registry.all() if ds.name not in ("WARDS", "FACILITIES")]
    with pytest.raises(DefinitionError, match=r"WARDS.capacity"):
        await platform.store.apply([*others, grown, retyped], [DatasetName("FACILITIES")])
    assert await _columns(platform.db, "ds_facilities") == {"id", "name"}
    assert _definitions(await platform.store.load_definitions())["FACILITIES"] == facilities
