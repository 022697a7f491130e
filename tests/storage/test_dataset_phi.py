"""PHI attributes at rest: sealed values, blind-index lookups, refusals and the flag's conversion.

Each test runs on SQLite and PostgreSQL (``db_url``), on a real store with
an ephemeral keyring, and reads the raw rows to see what the database holds.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Connection, select, text, update

from carewire.clock import FakeClock
from carewire.datasets.definitions import DefinitionError
from carewire.datasets.model import Attribute, AttrType, DatasetName
from carewire.datasets.query import Query, parse_filter, parse_sort
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError, ValidationError
from carewire.security.envelope import EncryptionError, Keyring, ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.dataset_phi import PhiCodec, canonical, parse
from carewire.storage.datasets import SqlDatasetStore

MARK = "Zyxwvu"  # a marker no stored byte may show in clear


async def _open(url: str, keyring: Keyring | None) -> tuple[Database, Registry, DatasetService]:
    db = await Database.open(url)
    store = SqlDatasetStore(db, keyring)
    registry = Registry(store)
    await registry.load()
    return db, registry, DatasetService(registry, store, FakeClock())


async def _raw(db: Database, sql: str) -> list[dict[str, object]]:
    async with db.read("raw") as conn:
        return [dict(r) for r in (await conn.execute(text(sql))).mappings().all()]


@pytest.fixture
async def ring() -> Keyring:
    return ephemeral_keyring()


async def test_patient_values_are_sealed_and_read_back(db_url: str, ring: Keyring) -> None:
    await migrate.upgrade(db_url)
    db, _, svc = await _open(db_url, ring)
    try:
        rec = await svc.create(
            "PATIENTS",
            {"mrn": f"MRN-{MARK}", "first_name": MARK, "last_name": "Doe", "dob": "1950-06-01"},
        )
        assert rec.values["first_name"] == MARK
        (row,) = await _raw(db, "SELECT * FROM ds_patients")
        assert row["mrn"] is None and row["first_name"] is None and row["dob"] is None
        for col in ("mrn__phi", "first_name__phi", "last_name__phi", "dob__phi"):
            assert str(row[col]).startswith("cw1:")
        assert MARK not in repr(row)
        assert len(str(row["mrn__bi"])) == 64
        again = await svc.get("PATIENTS", rec.id)
        assert again.values["mrn"] == f"MRN-{MARK}"
        assert again.values["dob"] == date(1950, 6, 1)
        assert again.values["sex"] is None  # not PHI, not touched
    finally:
        await db.close()


async def test_equality_lookups_use_the_blind_index(db_url: str, ring: Keyring) -> None:
    await migrate.upgrade(db_url)
    db, _, svc = await _open(db_url, ring)
    try:
        for mrn, last in (("100", "Smith"), ("200", "Jones"), ("300", "Smith")):
            await svc.create("PATIENTS", {"mrn": mrn, "last_name": last, "sex": "F"})
        await svc.create("PATIENTS", {"mrn": "400", "last_name": ""})

        async def mrns(*filters: str) -> list[str]:
            query = Query(filters=tuple(parse_filter(f) for f in filters))
            return [str(r.values["mrn"]) for r in (await svc.query("PATIENTS", query)).records]

        assert await mrns("mrn:eq:200") == ["200"]
        assert await mrns("last_name:eq:Smith") == ["100", "300"]
        assert await mrns("last_name:ne:Smith") == ["200", "400"]
        assert await mrns("mrn:in:100,300,999") == ["100", "300"]
        assert await mrns("last_name:empty") == ["400"]
        assert await mrns("last_name:not_empty") == ["100", "200", "300"]
        assert await mrns("dob:empty") == ["100", "200", "300", "400"]
        assert await mrns("mrn:eq:smith") == []
        found = await svc.store.find_by_key(svc.registry.get("PATIENTS"), {"mrn": "300"})
        assert found is not None and found.values["last_name"] == "Smith"
        async with svc.batch(name="t") as b:
            many = await b.find_many("PATIENTS", [{"mrn": "100"}, {"mrn": "200"}, {"mrn": "x"}])
        assert sorted(str(r.values["mrn"]) for r in many) == ["100", "200"]
        updated = await svc.upsert("PATIENTS", {"mrn": "200", "first_name": "Ann"})
        assert updated.values["last_name"] == "Jones"
        assert (await svc.query("PATIENTS", Query())).total == 4
    finally:
        await db.close()


@pytest.mark.parametrize(
    "query",
    [
        Query(filters=(parse_filter("dob:lt:1980-01-01"),)),
        Query(filters=(parse_filter("last_name:contains:mi"),)),
        Query(filters=(parse_filter("mrn:ge:1"),)),
        Query(sort=parse_sort("last_name")),
    ],
)
async def test_ranges_substrings_and_sorting_are_refused(db_url: str, query: Query) -> None:
    await migrate.upgrade(db_url)
    db, _, svc = await _open(db_url, ephemeral_keyring())
    try:
        with pytest.raises(RecordError) as refused:
            await svc.query("PATIENTS", query)
        assert refused.value.code == "phi-field"
        assert "is PHI, stored encrypted" in str(refused.value)
        # The store refuses too, should a query reach it unchecked.
        ds = svc.registry.get("PATIENTS")
        with pytest.raises(ValidationError):
            await svc.store.query(ds, query)
    finally:
        await db.close()


async def test_duplicate_mrn_is_refused(db_url: str, ring: Keyring) -> None:
    await migrate.upgrade(db_url)
    db, registry, svc = await _open(db_url, ring)
    try:
        await svc.create("PATIENTS", {"mrn": "1"})
        with pytest.raises(ConflictError, match="already has the key"):
            await svc.create("PATIENTS", {"mrn": "1"})
        # Below the service's check, the unique index over the blind index holds.
        ds = registry.get("PATIENTS")
        with pytest.raises(ConflictError):
            async with svc.store.write("dup") as w:
                await w.insert(ds, {"mrn": "1"})
    finally:
        await db.close()


async def test_a_value_moved_to_another_record_does_not_open(db_url: str, ring: Keyring) -> None:
    await migrate.upgrade(db_url)
    db, _, svc = await _open(db_url, ring)
    try:
        a = await svc.create("PATIENTS", {"mrn": "A", "last_name": "Smith"})
        b = await svc.create("PATIENTS", {"mrn": "B", "last_name": "Jones"})
        (row,) = await _raw(db, f"SELECT last_name__phi FROM ds_patients WHERE id = {a.id}")
        async with db.transaction("tamper") as txn:
            await txn.conn.execute(
                text("UPDATE ds_patients SET last_name__phi = :v WHERE id = :i"),
                {"v": row["last_name__phi"], "i": b.id},
            )
        with pytest.raises(EncryptionError) as err:
            await svc.get("PATIENTS", b.id)
        assert err.value.code == "tampered"
    finally:
        await db.close()


async def test_an_existing_install_is_encrypted_at_start(db_url: str) -> None:
    """Plain values written before PHI existed are sealed when a store with keys loads."""
    await migrate.upgrade(db_url)
    db, _, plain = await _open(db_url, None)  # no keyring: the values stay in clear
    try:
        rec = await plain.create(
            "PATIENTS", {"mrn": "P-1", "first_name": MARK, "dob": "1970-01-02"}
        )
        (row,) = await _raw(db, "SELECT first_name FROM ds_patients")
        assert row["first_name"] == MARK
    finally:
        await db.close()
    ring = ephemeral_keyring()
    db, _, svc = await _open(db_url, ring)
    try:
        (row,) = await _raw(db, "SELECT * FROM ds_patients")
        assert row["first_name"] is None and row["mrn"] is None
        assert MARK not in repr(row)
        got = await svc.get("PATIENTS", rec.id)
        assert got.values["first_name"] == MARK and got.values["dob"] == date(1970, 1, 2)
        page = await svc.query("PATIENTS", Query(filters=(parse_filter("mrn:eq:P-1"),)))
        assert [r.id for r in page.records] == [rec.id]
    finally:
        await db.close()


async def test_turning_the_flag_on_and_off_converts_existing_values(
    db_url: str, ring: Keyring
) -> None:
    await migrate.upgrade(db_url)
    db, registry, svc = await _open(db_url, ring)
    try:
        await registry.create_dataset(
            "VISITORS",
            attributes=(
                Attribute(name="code", type=AttrType.STRING, is_key=True),
                Attribute(name="phone", type=AttrType.STRING),
                Attribute(name="visits", type=AttrType.INTEGER),
            ),
        )
        for i in range(3):
            await svc.create("VISITORS", {"code": f"v{i}", "phone": f"555-{MARK}-{i}", "visits": i})
        ds = await registry.set_phi("VISITORS", "phone", is_phi=True)
        assert ds.attribute("phone") is not None and ds.attribute("phone").is_phi  # type: ignore[union-attr]
        ds = await registry.set_phi("VISITORS", "visits", is_phi=True)
        rows = await _raw(db, "SELECT * FROM ds_visitors ORDER BY id")
        assert all(r["phone"] is None and r["visits"] is None for r in rows)
        assert MARK not in repr(rows)
        page = await svc.query("VISITORS", Query(filters=(parse_filter("visits:eq:2"),)))
        assert [r.values["phone"] for r in page.records] == [f"555-{MARK}-2"]

        await registry.set_phi("VISITORS", "phone", is_phi=False)
        rows = await _raw(db, "SELECT * FROM ds_visitors ORDER BY id")
        assert [r["phone"] for r in rows] == [f"555-{MARK}-{i}" for i in range(3)]
        assert all(r["phone__phi"] is None and r["phone__bi"] is None for r in rows)
        page = await svc.query("VISITORS", Query(filters=(parse_filter("phone:contains:-1"),)))
        assert page.total == 1
        # The definition persists: a restart sees the same flags.
        again = Registry(SqlDatasetStore(db, ring))
        await again.load()
        visitors = again.get("VISITORS")
        assert [a.is_phi for a in visitors.attributes] == [False, False, True]
    finally:
        await db.close()


async def test_flag_errors(db_url: str, ring: Keyring) -> None:
    await migrate.upgrade(db_url)
    db, registry, _ = await _open(db_url, ring)
    try:
        with pytest.raises(DefinitionError, match="built-in PHI attribute stays"):
            await registry.set_phi("PATIENTS", "mrn", is_phi=False)
        with pytest.raises(DefinitionError, match="no such attribute"):
            await registry.set_phi("PATIENTS", "shoe_size", is_phi=True)
        assert registry.get("PATIENTS").attribute("mrn").is_phi  # type: ignore[union-attr]
        # A saved definition that predates the flag is marked again at start.
        async with db.transaction("forget") as txn:

            def unmark(conn: Connection) -> None:
                from carewire.storage.tables import dataset_definitions as defs

                raw = conn.execute(
                    select(defs.c.definition).where(defs.c.name == "PATIENTS")
                ).scalar_one()
                conn.execute(
                    update(defs)
                    .where(defs.c.name == "PATIENTS")
                    .values(definition=raw.replace('"phi": true', '"phi": false'))
                )

            await txn.conn.run_sync(unmark)
        again = Registry(SqlDatasetStore(db, ring))
        await again.load()
        patients = again.get(DatasetName("PATIENTS"))
        assert {a.name for a in patients.phi_attributes} == {
            "mrn",
            "first_name",
            "last_name",
            "dob",
            "admit_date",
        }
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (AttrType.STRING, "Ann"),
        (AttrType.INTEGER, 42),
        (AttrType.BOOLEAN, True),
        (AttrType.BOOLEAN, False),
        (AttrType.DATE, date(2001, 2, 3)),
    ],
)
def test_canonical_text_round_trips(kind: AttrType, value: object) -> None:
    assert parse(kind, canonical(kind, value)) == value


def test_codec_binds_record_and_attribute() -> None:
    codec = PhiCodec(ephemeral_keyring())
    attr = Attribute(name="mrn", type=AttrType.STRING, is_phi=True)
    sealed = codec.seal("PATIENTS", attr, 1, "X")
    assert sealed is not None
    assert codec.open("PATIENTS", attr, 1, sealed) == "X"
    with pytest.raises(EncryptionError):
        codec.open("PATIENTS", attr, 2, sealed)
    other = Attribute(name="last_name", type=AttrType.STRING, is_phi=True)
    assert codec.index("PATIENTS", attr, "X") != codec.index("PATIENTS", other, "X")
    assert codec.index("PATIENTS", attr, None) is None
