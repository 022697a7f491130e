"""The /datasets/{name}/records resource, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    ChangeKind,
    DatasetName,
    Link,
    RecordId,
)
from tests.web.conftest import Api, assert_problem

RECORDS = "/datasets/EQUIPMENT/records"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ward:
    """A facility with three rooms, two users, a template, and the EQUIPMENT dataset."""

    facility: RecordId
    rooms: dict[str, RecordId]
    users: dict[str, RecordId]
    template: RecordId


@pytest.fixture
async def ward(api: Api) -> Ward:
    svc = api.platform.datasets
    await api.platform.registry.create_dataset(
        "EQUIPMENT",
        attributes=[
            Attribute(name="serial", type=AttrType.STRING, is_key=True),
            Attribute(name="count", type=AttrType.INTEGER),
            Attribute(name="is_portable", type=AttrType.BOOLEAN),
            Attribute(name="bought", type=AttrType.DATE),
            Attribute(name="checked_at", type=AttrType.DATETIME, is_required=True),
        ],
        links=[
            Link(
                name="room",
                target=DatasetName("ROOMS"),
                reverse="equipment",
                cardinality=Cardinality.MANY_TO_ONE,
            )
        ],
    )
    facility = (await svc.create("FACILITIES", {"name": "Main"})).id
    rooms = {
        n: (await svc.create("ROOMS", {"room_number": n, "facility": facility})).id
        for n in ("101", "102", "103")
    }
    users = {n: (await svc.create("USERS", {"login": n})).id for n in ("alice", "bob")}
    template = (await svc.create("TEMPLATES", {"name": "on my way"})).id
    api.events.clear()
    return Ward(facility=facility, rooms=rooms, users=users, template=template)


def _item(serial: str, **values: object) -> dict[str, object]:
    return {"values": {"serial": serial, "checked_at": "2026-01-31T08:00:00Z", **values}}


async def test_create(api: Api, ward: Ward) -> None:
    r = await api.admin.post(
        RECORDS,
        json=_item(
            "P-1", count="2", is_portable="yes", bought="2025-12-24", room=ward.rooms["101"]
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["values"] == {
        "serial": "P-1",
        "checked_at": "2026-01-31T08:00:00+00:00",
        "count": 2,
        "is_portable": True,
        "bought": "2025-12-24",
        "room": ward.rooms["101"],
    }
    [event] = api.events
    assert (event.dataset, event.record_id, event.kind) == (
        "EQUIPMENT",
        body["id"],
        ChangeKind.CREATE,
    )
    assert event.origin.actor == "api:admin-token"


async def test_get(api: Api, ward: Ward) -> None:
    created = (await api.admin.post(RECORDS, json=_item("P-1", count=7))).json()
    r = await api.admin.get(f"{RECORDS}/{created['id']}")
    assert r.status_code == 200
    assert r.json() == {
        "id": created["id"],
        "values": {
            "serial": "P-1",
            "count": 7,
            "is_portable": None,
            "bought": None,
            "checked_at": "2026-01-31T08:00:00+00:00",
            "room": None,
        },
    }
    assert_problem(await api.admin.get(f"{RECORDS}/999"), 404, "record-not-found", detail="999")
    assert_problem(
        await api.admin.get(f"{RECORDS}/abc"), 422, "invalid-request", detail="record_id"
    )


async def test_unknown_dataset(api: Api, ward: Ward) -> None:
    for method, path, body in (
        ("GET", "/datasets/NOPE/records", None),
        ("GET", "/datasets/NOPE/records/1", None),
        ("POST", "/datasets/NOPE/records", {"values": {"a": 1}}),
        ("PUT", "/datasets/NOPE/records", {"values": {"a": 1}}),
        ("PATCH", "/datasets/NOPE/records/1", {"values": {"a": 1}}),
        ("DELETE", "/datasets/NOPE/records/1", None),
        ("POST", "/datasets/NOPE/records/1/links/x", {"targets": [1]}),
        ("DELETE", "/datasets/NOPE/records/1/links/x", {"targets": [1]}),
    ):
        r = await api.admin.request(method, path, json=body)
        assert_problem(r, 404, "unknown-dataset", detail="NOPE")


async def test_list(api: Api, ward: Ward) -> None:
    r = await api.admin.get("/datasets/ROOMS/records")
    assert r.status_code == 200
    assert r.json() == {
        "total": 3,
        "offset": 0,
        "limit": 100,
        "records": [
            {"id": rid, "values": {"room_number": n, "facility": ward.facility, "unit": None}}
            for n, rid in ward.rooms.items()
        ],
    }


async def test_list_filters_sorts_and_pages(api: Api, ward: Ward) -> None:
    for i in range(5):
        await api.admin.post(RECORDS, json=_item(f"S-{i}", count=i, room=ward.rooms["102"]))
    await api.admin.post(RECORDS, json=_item("X-9", count=9))

    async def serials(**params: str | int | list[str]) -> tuple[int, list[str]]:
        r = await api.admin.get(RECORDS, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["offset"], body["limit"]) == (
            params.get("offset", 0),
            params.get("limit", 100),
        )
        return body["total"], [rec["values"]["serial"] for rec in body["records"]]

    assert await serials(sort="-count") == (6, ["X-9", "S-4", "S-3", "S-2", "S-1", "S-0"])
    assert await serials(filter="count:ge:3", sort="serial") == (3, ["S-3", "S-4", "X-9"])
    assert await serials(filter=["count:ge:1", "count:lt:4"]) == (3, ["S-1", "S-2", "S-3"])
    assert await serials(filter="serial:in:S-0,X-9") == (2, ["S-0", "X-9"])
    assert await serials(filter="serial=S-2") == (1, ["S-2"])
    assert await serials(filter="serial:contains:X") == (1, ["X-9"])
    assert await serials(filter="room:empty") == (1, ["X-9"])
    assert await serials(filter="checked_at:gt:2026-01-31T07:59:59Z", sort="-serial", limit=1) == (
        6,
        ["X-9"],
    )
    assert await serials(filter="checked_at:lt:2026-01-31T08:00:00+00:00") == (0, [])
    assert await serials(filter=f"room:eq:{ward.rooms['102']}", sort="-serial", limit=2) == (
        5,
        ["S-4", "S-3"],
    )
    assert await serials(sort="serial", offset=4, limit=10) == (6, ["S-4", "X-9"])
    assert await serials(offset=50) == (6, [])


@pytest.mark.parametrize(
    ("params", "code", "detail"),
    [
        ({"filter": "count:like:3"}, "invalid", "unknown operator"),
        ({"filter": "count:eq"}, "invalid", "needs a value"),
        ({"filter": "colour:eq:red"}, "unknown-field", "colour"),
        ({"filter": "count:gt:many"}, "wrong-type", "count"),
        ({"sort": "colour"}, "unknown-field", "colour"),
        ({"limit": 0}, "invalid-request", "limit"),
        ({"limit": 1001}, "invalid-request", "limit"),
        ({"offset": -1}, "invalid-request", "offset"),
    ],
)
async def test_bad_queries(
    api: Api, ward: Ward, params: dict[str, str | int], code: str, detail: str
) -> None:
    r = await api.admin.get(RECORDS, params=params)
    assert_problem(r, 422, code, detail=detail)


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        ({"colour": "red"}, "unknown-field", "colour"),
        ({"count": "many"}, "wrong-type", "count"),
        ({"count": True}, "wrong-type", "count"),
        ({"is_portable": "perhaps"}, "wrong-type", "is_portable"),
        ({"bought": "Christmas"}, "wrong-type", "bought"),
        ({"checked_at": "2026-01-31T08:00:00"}, "wrong-type", "checked_at"),
        ({"checked_at": None}, "required", "checked_at"),
        ({"serial": ""}, "required", "serial"),
        ({"room": 999}, "dangling-link", "room"),
        ({"room": {"room_number": "404", "facility": 1}}, "dangling-link", "room"),
    ],
)
async def test_invalid_values_name_the_field(
    api: Api, ward: Ward, values: dict[str, object], code: str, field: str
) -> None:
    body = _item("P-1")
    assert isinstance(body["values"], dict)
    body["values"].update(values)
    r = await api.admin.post(RECORDS, json=body)
    problem = assert_problem(r, 422, code, detail=field)
    if code != "unknown-field":
        assert problem["field"] == field
    assert api.events == []


async def test_missing_required_value(api: Api, ward: Ward) -> None:
    r = await api.admin.post(RECORDS, json={"values": {"serial": "P-1"}})
    problem = assert_problem(r, 422, "required", detail="checked_at")
    assert problem["field"] == "checked_at"


async def test_duplicate_key(api: Api, ward: Ward) -> None:
    assert (await api.admin.post(RECORDS, json=_item("P-1"))).status_code == 201
    r = await api.admin.post(RECORDS, json=_item("P-1"))
    assert_problem(r, 409, "duplicate-key", detail="serial='P-1'")
    r = await api.admin.post(
        "/datasets/ROOMS/records", json={"values": {"room_number": "101", "facility": 1}}
    )
    assert_problem(r, 409, "duplicate-key", detail="ROOMS")


async def test_links_by_key(api: Api, ward: Ward) -> None:
    room = {"room_number": "103", "facility": {"name": "Main"}}
    r = await api.admin.post(
        "/datasets/BEDS/records", json={"values": {"bed_number": "A", "room": room}}
    )
    assert r.status_code == 201, r.text
    assert r.json()["values"]["room"] == ward.rooms["103"]


async def test_malformed_bodies(api: Api, ward: Ward) -> None:
    assert_problem(await api.admin.post(RECORDS, json={"serial": "P-1"}), 422, "invalid-request")
    assert_problem(await api.admin.post(RECORDS, json={"values": []}), 422, "invalid-request")
    assert_problem(
        await api.admin.post(
            RECORDS, content=b"not json", headers={"content-type": "application/json"}
        ),
        422,
        "invalid-request",
    )


async def test_upsert(api: Api, ward: Ward) -> None:
    r = await api.admin.put(RECORDS, json=_item("U-1", count=1))
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    r = await api.admin.put(RECORDS, json={"values": {"serial": "U-1", "count": 5}})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid and r.json()["values"]["count"] == 5
    stored = (await api.admin.get(f"{RECORDS}/{rid}")).json()["values"]
    assert stored["count"] == 5 and stored["checked_at"] == "2026-01-31T08:00:00+00:00"
    assert [e.kind for e in api.events] == [ChangeKind.CREATE, ChangeKind.UPDATE]
    assert {e.origin.actor for e in api.events} == {"api:admin-token"}
    r = await api.admin.put(RECORDS, json={"values": {"count": 5}})
    assert_problem(r, 422, "invalid-record", detail="serial")
    r = await api.admin.put("/datasets/CALL_LOG_HISTORY/records", json={"values": {"caller": "x"}})
    assert_problem(r, 422, "invalid-record", detail="no key")


async def test_update(api: Api, ward: Ward) -> None:
    rid = (await api.admin.post(RECORDS, json=_item("P-1", count=1))).json()["id"]
    r = await api.admin.patch(
        f"{RECORDS}/{rid}", json={"values": {"count": "3", "room": ward.rooms["101"]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["values"]["count"] == 3 and r.json()["values"]["room"] == ward.rooms["101"]
    assert r.json()["values"]["serial"] == "P-1"
    event = api.events[-1]
    assert event.kind is ChangeKind.UPDATE and event.changed == {"count", "room"}
    r = await api.admin.patch(f"{RECORDS}/{rid}", json={"values": {"checked_at": None}})
    assert_problem(r, 422, "required", detail="checked_at")
    r = await api.admin.patch(f"{RECORDS}/999", json={"values": {"count": 1}})
    assert_problem(r, 404, "record-not-found")
    await api.admin.post(RECORDS, json=_item("P-2"))
    r = await api.admin.patch(f"{RECORDS}/{rid}", json={"values": {"serial": "P-2"}})
    assert_problem(r, 409, "duplicate-key")


async def test_delete(api: Api, ward: Ward) -> None:
    rid = (await api.admin.post(RECORDS, json=_item("P-1", room=ward.rooms["101"]))).json()["id"]
    r = await api.admin.delete(f"/datasets/ROOMS/records/{ward.rooms['101']}")
    assert_problem(r, 409, "conflict", detail="EQUIPMENT.room")
    r = await api.admin.delete(f"{RECORDS}/{rid}")
    assert r.status_code == 204 and r.content == b""
    assert api.events[-1].kind is ChangeKind.DELETE
    assert_problem(await api.admin.get(f"{RECORDS}/{rid}"), 404, "record-not-found")
    assert_problem(await api.admin.delete(f"{RECORDS}/{rid}"), 404, "record-not-found")
    r = await api.admin.delete(f"/datasets/ROOMS/records/{ward.rooms['101']}")
    assert r.status_code == 204


async def test_link_and_unlink_many(api: Api, ward: Ward) -> None:
    path = f"/datasets/TEMPLATES/records/{ward.template}/links/users"
    alice, bob = ward.users["alice"], ward.users["bob"]
    r = await api.admin.post(path, json={"targets": [alice]})
    assert r.status_code == 200, r.text
    assert r.json()["values"]["users"] == [alice]
    r = await api.admin.post(path, json={"targets": [{"login": "bob"}, alice]})
    assert r.json()["values"]["users"] == [alice, bob]
    event = api.events[-1]
    assert event.old is not None and event.new is not None
    assert (event.old["users"], event.new["users"]) == ([alice], [alice, bob])
    r = await api.admin.request("DELETE", path, json={"targets": [alice]})
    assert r.status_code == 200, r.text
    assert r.json()["values"]["users"] == [bob]
    r = await api.admin.post(path, json={"targets": [999]})
    assert_problem(r, 422, "dangling-link", detail="999")
    r = await api.admin.post(path, json={"targets": [{"login": "carol"}]})
    assert_problem(r, 422, "dangling-link", detail="carol")


async def test_link_and_unlink_one(api: Api, ward: Ward) -> None:
    rid = (await api.admin.post(RECORDS, json=_item("P-1"))).json()["id"]
    path = f"{RECORDS}/{rid}/links/room"
    r = await api.admin.post(path, json={"targets": [ward.rooms["102"]]})
    assert r.status_code == 200 and r.json()["values"]["room"] == ward.rooms["102"]
    r = await api.admin.post(path, json={"targets": [1, 2]})
    assert_problem(r, 422, "invalid-record", detail="exactly one")
    r = await api.admin.request("DELETE", path, json={"targets": []})
    assert r.status_code == 200 and r.json()["values"]["room"] is None


async def test_link_refusals(api: Api, ward: Ward) -> None:
    rid = (await api.admin.post(RECORDS, json=_item("P-1"))).json()["id"]
    r = await api.admin.post(f"{RECORDS}/{rid}/links/colour", json={"targets": [1]})
    assert_problem(r, 422, "unknown-field", detail="colour")
    r = await api.admin.post(f"{RECORDS}/999/links/room", json={"targets": [ward.rooms["101"]]})
    assert_problem(r, 404, "record-not-found")
    path = f"/datasets/ROOMS/records/{ward.rooms['101']}/links/equipment"
    r = await api.admin.post(path, json={"targets": [rid]})
    assert_problem(r, 422, "invalid-record", detail="reverse")
    r = await api.admin.post(f"{RECORDS}/{rid}/links/room", json={"ids": [1]})
    assert_problem(r, 422, "invalid-request", detail="targets")
