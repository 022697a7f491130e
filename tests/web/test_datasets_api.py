"""The /datasets resource: list, read, create, add attributes and links."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Api, assert_problem

EQUIPMENT: dict[str, Any] = {
    "name": "EQUIPMENT",
    "description": "movable equipment",
    "attributes": [
        {"name": "serial", "type": "String", "key": True, "description": "the serial number"},
        {"name": "count", "type": "Integer"},
        {"name": "checked_at", "type": "Date/Time", "required": True},
    ],
    "links": [
        {"name": "room", "target": "ROOMS", "reverse": "equipment", "cardinality": "n:1"},
        {"name": "units", "target": "UNITS", "reverse": "equipment", "cardinality": "m:n"},
    ],
}


async def test_list(api: Api) -> None:
    r = await api.admin.get("/datasets")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    datasets = r.json()["datasets"]
    assert len(datasets) == 31
    assert [d["name"] for d in datasets] == sorted(d["name"] for d in datasets)
    beds = next(d for d in datasets if d["name"] == "BEDS")
    assert beds == {
        "name": "BEDS",
        "description": "stores all information for beds that are registered.",
        "is_builtin": True,
        "attribute_count": 1,
        "link_count": 4,  # room, locs, patients, alarms
    }


async def test_get(api: Api) -> None:
    r = await api.admin.get("/datasets/BEDS")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "BEDS" and body["is_builtin"] is True
    assert body["attributes"] == [
        {
            "name": "bed_number",
            "type": "String",
            "key": True,
            "required": False,
            "phi": False,
            "description": "the number of the bed.",
        }
    ]
    room = body["links"][0]
    assert room["name"] == "room" and room["target"] == "ROOMS"
    assert (room["reverse"], room["cardinality"], room["key"]) == ("beds", "n:1", True)


async def test_get_unknown(api: Api) -> None:
    r = await api.admin.get("/datasets/NOPE")
    assert_problem(r, 404, "unknown-dataset", detail="NOPE")


async def test_create(api: Api) -> None:
    r = await api.admin.post("/datasets", json=EQUIPMENT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "EQUIPMENT" and body["is_builtin"] is False
    assert body["description"] == "movable equipment"
    assert [a["name"] for a in body["attributes"]] == ["serial", "count", "checked_at"]
    assert body["attributes"][0]["key"] is True and body["attributes"][2]["required"] is True
    assert [ln["name"] for ln in body["links"]] == ["room", "units"]
    assert (await api.admin.get("/datasets/EQUIPMENT")).json() == body
    rooms = (await api.admin.get("/datasets/ROOMS")).json()
    reverse = next(ln for ln in rooms["links"] if ln["name"] == "equipment")
    assert (reverse["target"], reverse["reverse"], reverse["cardinality"]) == (
        "EQUIPMENT",
        "room",
        "1:n",
    )
    units = (await api.admin.get("/datasets/UNITS")).json()
    assert any(ln["name"] == "equipment" and ln["cardinality"] == "m:n" for ln in units["links"])
    listed = {d["name"]: d for d in (await api.admin.get("/datasets")).json()["datasets"]}
    assert listed["EQUIPMENT"]["is_builtin"] is False
    assert (listed["EQUIPMENT"]["attribute_count"], listed["EQUIPMENT"]["link_count"]) == (3, 2)
    created = await api.admin.post(
        "/datasets/EQUIPMENT/records",
        json={"values": {"serial": "X1", "checked_at": "2026-01-31T08:00:00Z"}},
    )
    assert created.status_code == 201, created.text


async def test_create_minimal(api: Api) -> None:
    r = await api.admin.post("/datasets", json={"name": "NOTES"})
    assert r.status_code == 201
    assert r.json() == {
        "name": "NOTES",
        "description": "",
        "is_builtin": False,
        "attributes": [],
        "links": [],
    }


async def test_create_twice(api: Api) -> None:
    assert (await api.admin.post("/datasets", json=EQUIPMENT)).status_code == 201
    r = await api.admin.post("/datasets", json=EQUIPMENT)
    assert_problem(r, 409, "conflict", detail="EQUIPMENT")
    r = await api.admin.post("/datasets", json={"name": "BEDS"})
    assert_problem(r, 409, "conflict", detail="BEDS")


async def test_invalid_definitions_list_every_problem(api: Api) -> None:
    r = await api.admin.post(
        "/datasets",
        json={
            "name": "GEAR",
            "attributes": [
                {"name": "Bad Name", "type": "String"},
                {"name": "id", "type": "Integer"},
                {"name": "dup", "type": "String"},
                {"name": "dup", "type": "Boolean"},
            ],
        },
    )
    body = assert_problem(r, 422, "invalid-definition")
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 3
    assert any("GEAR.Bad Name" in e for e in errors)
    assert any("'id' is reserved" in e for e in errors)
    assert any("GEAR.dup: the name is used twice" in e for e in errors)
    assert "GEAR" not in (await api.admin.get("/datasets")).text


async def test_invalid_links(api: Api) -> None:
    r = await api.admin.post(
        "/datasets",
        json={
            "name": "GEAR",
            "links": [{"name": "x", "target": "NOWHERE", "reverse": "gear", "cardinality": "n:1"}],
        },
    )
    body = assert_problem(r, 422, "invalid-definition", detail="NOWHERE")
    assert body["errors"] == ["GEAR.x: links to unknown dataset NOWHERE"]
    r = await api.admin.post(
        "/datasets",
        json={
            "name": "GEAR",
            "links": [{"name": "room", "target": "ROOMS", "reverse": "beds", "cardinality": "n:1"}],
        },
    )
    body = assert_problem(r, 422, "invalid-definition", detail="ROOMS.beds")
    assert body["errors"]
    assert (await api.admin.get("/datasets/GEAR")).status_code == 404


async def test_malformed_bodies(api: Api) -> None:
    r = await api.admin.post(
        "/datasets", json={"name": "GEAR", "attributes": [{"name": "a", "type": "Float"}]}
    )
    body = assert_problem(r, 422, "invalid-request", detail="attributes.0.type")
    assert body["errors"]
    r = await api.admin.post("/datasets", json={"name": "GEAR", "colour": "red"})
    assert_problem(r, 422, "invalid-request", detail="colour")
    r = await api.admin.post(
        "/datasets", content=b"{", headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "invalid-request")
    r = await api.admin.post("/datasets", json={"description": "no name"})
    assert_problem(r, 422, "invalid-request", detail="body.name")


async def test_add_attribute(api: Api) -> None:
    r = await api.admin.post(
        "/datasets/ROOMS/attributes",
        json={"name": "floor", "type": "Integer", "description": "storey"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["attributes"][-1] == {
        "name": "floor",
        "type": "Integer",
        "key": False,
        "required": False,
        "phi": False,
        "description": "storey",
    }
    await api.admin.post("/datasets/FACILITIES/records", json={"values": {"name": "Main"}})
    created = await api.admin.post(
        "/datasets/ROOMS/records",
        json={"values": {"room_number": "101", "facility": 1, "floor": "3"}},
    )
    assert created.status_code == 201 and created.json()["values"]["floor"] == 3


async def test_add_attribute_refusals(api: Api) -> None:
    r = await api.admin.post("/datasets/NOPE/attributes", json={"name": "a", "type": "String"})
    assert_problem(r, 404, "unknown-dataset")
    r = await api.admin.post(
        "/datasets/ROOMS/attributes", json={"name": "wing", "type": "String", "key": True}
    )
    body = assert_problem(r, 422, "invalid-definition", detail="key")
    assert body["errors"] == ["ROOMS.wing: a dataset's key is fixed when it is created"]
    r = await api.admin.post(
        "/datasets/ROOMS/attributes", json={"name": "room_number", "type": "String"}
    )
    assert_problem(r, 422, "invalid-definition", detail="used twice")
    await api.platform.datasets.create("FACILITIES", {"name": "Main"})
    r = await api.admin.post(
        "/datasets/FACILITIES/attributes", json={"name": "code", "type": "String", "required": True}
    )
    assert_problem(r, 422, "invalid-definition", detail="has records")


@pytest.mark.parametrize(("cardinality", "reverse"), [("n:1", "1:n"), ("m:n", "m:n")])
async def test_add_link(
    api: Api, request: pytest.FixtureRequest, cardinality: str, reverse: str
) -> None:
    r = await api.admin.post(
        "/datasets/ROOMS/links",
        json={
            "name": "wing",
            "target": "UNITS",
            "reverse": "wing_rooms",
            "cardinality": cardinality,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["links"][-1]["name"] == "wing"
    units = (await api.admin.get("/datasets/UNITS")).json()
    assert units["links"][-1] == {
        "name": "wing_rooms",
        "target": "ROOMS",
        "reverse": "wing",
        "cardinality": reverse,
        "key": False,
        "reverse_key": False,
        "description": "",
    }
    await api.platform.datasets.create("FACILITIES", {"name": "Main"})
    unit = await api.platform.datasets.create("UNITS", {"name": "ICU", "facility": 1})
    value: object = unit.id if cardinality == "n:1" else [unit.id]
    r = await api.admin.post(
        "/datasets/ROOMS/records",
        json={"values": {"room_number": "1", "facility": 1, "wing": value}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["values"]["wing"] == value


async def test_add_link_refusals(api: Api) -> None:
    r = await api.admin.post(
        "/datasets/ROOMS/links",
        json={"name": "wing", "target": "UNITS", "reverse": "rooms", "cardinality": "n:1"},
    )
    assert_problem(r, 422, "invalid-definition", detail="UNITS.rooms: the name is taken")
    r = await api.admin.post(
        "/datasets/ROOMS/links",
        json={"name": "wing", "target": "NOPE", "reverse": "rooms", "cardinality": "n:1"},
    )
    assert_problem(r, 422, "invalid-definition", detail="NOPE")
    r = await api.admin.post(
        "/datasets/ROOMS/links",
        json={"name": "wing", "target": "UNITS", "reverse": "w", "cardinality": "2:3"},
    )
    assert_problem(r, 422, "invalid-request", detail="cardinality")
    r = await api.admin.post(
        "/datasets/NOPE/links",
        json={"name": "wing", "target": "UNITS", "reverse": "w", "cardinality": "n:1"},
    )
    assert_problem(r, 404, "unknown-dataset")
