"""The /adapters and /adapter-kinds resources, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.web.conftest import UPDATES, XMPP, Api, add_calls, assert_problem, update_rule


@pytest.fixture
async def calls(api: Api) -> Api:
    await add_calls(api.platform)
    return api


async def test_kinds(sqlite_api: Api) -> None:
    r = await sqlite_api.reader.get("/adapter-kinds")
    assert r.status_code == 200, r.text
    kinds = {k["component"]: k for k in r.json()["kinds"]}
    assert list(kinds) == sorted(kinds)  # by component name
    assert {"AssignmentManager", "DataUpdate", "XMPP"} <= set(kinds)
    xmpp = kinds["XMPP"]
    assert xmpp["singleton"] is True and xmpp["description"]
    assert "DELIVERIES" in xmpp["required_datasets"]
    domain = next(f for f in xmpp["settings"] if f["name"] == "chat_domain")
    assert domain == {
        "name": "chat_domain",
        "label": "Chat Domain",
        "kind": "text",
        "required": True,
        "expressions": False,
        "help": "The domain users sign in to (user@DOMAIN); the one given to carewire init.",
    }
    alert = next(a for a in xmpp["actions"] if a["name"] == "Send Alert")
    recipients = alert["settings"][0]
    assert recipients["label"] == "Recipients" and recipients["kind"] == "lines"
    assert recipients["required"] is True and recipients["expressions"] is True
    update = kinds["DataUpdate"]
    assert update["singleton"] is False and update["settings"] == []
    assert update["required_datasets"] == []
    assert [a["name"] for a in update["actions"]] == ["Update Record", "Create Record"]
    assert update["actions"][0]["description"]
    assert update["actions"][0]["settings"][0]["kind"] == "updates"


async def test_create_list_read(calls: Api) -> None:
    r = await calls.admin.post(
        "/adapters", json={"component": "DataUpdate", "reference_name": "  Spare  "}
    )
    assert r.status_code == 201, r.text
    spare = r.json()
    assert isinstance(spare.pop("id"), int)
    assert spare == {
        "reference_name": "Spare",
        "component": "DataUpdate",
        "enabled": False,
        "settings": {},
        "required_datasets": {},
        "health": {
            "state": "disabled",
            "restarts": 0,
            "last_error": "",
            "note": "",
            "counters": {},
        },
    }

    r = await calls.reader.get("/adapters")
    assert r.status_code == 200
    assert r.json()["total"] == 3
    assert [a["reference_name"] for a in r.json()["adapters"]] == ["Chat", UPDATES, "Spare"]
    r = await calls.reader.get("/adapters", params={"include_disabled": "false"})
    assert r.json()["total"] == 3
    assert [a["reference_name"] for a in r.json()["adapters"]] == ["Chat", UPDATES]
    r = await calls.reader.get("/adapters", params={"search": "XM"})
    assert [a["reference_name"] for a in r.json()["adapters"]] == ["Chat"]
    r = await calls.reader.get("/adapters", params={"search": "dAtAuPd"})  # name or component
    assert [a["reference_name"] for a in r.json()["adapters"]] == [UPDATES, "Spare"]

    r = await calls.reader.get(f"/adapters/{XMPP}")
    assert r.status_code == 200
    chat = r.json()
    assert chat["component"] == "XMPP" and chat["enabled"] is True
    assert chat["settings"]["chat_domain"] == "carewire.test"
    assert chat["required_datasets"]["USERS"] == "USERS"
    assert chat["health"]["state"] == "stopped"  # the tests never start the adapters


async def test_required_datasets_are_created(calls: Api) -> None:
    await calls.admin.post(f"/adapters/{XMPP}/disable")
    body = {
        "component": "XMPP",
        "reference_name": "Staging",
        "settings": {"chat_domain": "staging.test"},
        "required_datasets": {"USERS": "STAGING_USERS"},
    }
    r = await calls.admin.post("/adapters", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["required_datasets"]["USERS"] == "STAGING_USERS"
    assert "STAGING_USERS" in calls.platform.registry


async def test_change_enable_disable_remove(calls: Api) -> None:
    r = await calls.admin.patch(f"/adapters/{XMPP}", json={"settings": {"chat_domain": "x.test"}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["chat_domain"] == "x.test" and r.json()["enabled"] is True
    r = await calls.admin.patch(f"/adapters/{XMPP}", json={"reference_name": "Chat 2"})
    assert r.json()["reference_name"] == "Chat 2"
    assert_problem(await calls.admin.get(f"/adapters/{XMPP}"), 404, "unknown-adapter")

    r = await calls.admin.post("/adapters/Chat 2/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["health"]["state"] == "disabled"
    assert not calls.platform.adapters.get("Chat 2").is_enabled
    r = await calls.admin.post("/adapters/Chat 2/enable")
    assert r.status_code == 200 and r.json()["enabled"] is True
    r = await calls.admin.patch("/adapters/Chat 2", json={"enabled": False})
    assert r.json()["enabled"] is False

    r = await calls.admin.delete("/adapters/Chat 2")
    assert r.status_code == 204 and r.content == b""
    assert [c.reference_name for c in calls.platform.adapters.list()] == [UPDATES]


async def test_conflicts(calls: Api) -> None:
    body = {"component": "XMPP", "reference_name": "Second", "enabled": True}
    r = await calls.admin.post("/adapters", json={**body, "settings": {"chat_domain": "b.test"}})
    assert_problem(r, 409, "conflict", detail="only one XMPP adapter can be enabled")
    r = await calls.admin.post("/adapters", json={**body, "enabled": False, "settings": {}})
    assert assert_problem(r, 422, "invalid-settings")["errors"] == ["Required: Chat Domain"]
    r = await calls.admin.post(
        "/adapters", json={**body, "enabled": False, "settings": {"chat_domain": "b.test"}}
    )
    assert r.status_code == 201
    assert_problem(await calls.admin.post("/adapters/Second/enable"), 409, "conflict")
    r = await calls.admin.patch("/adapters/Second", json={"enabled": True})
    assert_problem(r, 409, "conflict")
    r = await calls.admin.patch("/adapters/Second", json={"reference_name": XMPP})
    assert_problem(r, 409, "conflict", detail="already exists")
    r = await calls.admin.post(
        "/adapters", json={"component": "DataUpdate", "reference_name": XMPP}
    )
    assert_problem(r, 409, "conflict", detail="already exists")

    assert (await calls.admin.post("/rules", json=update_rule())).status_code == 201
    r = await calls.admin.delete(f"/adapters/{UPDATES}")
    assert_problem(r, 409, "conflict", detail="note open calls")
    r = await calls.admin.patch(f"/adapters/{UPDATES}", json={"reference_name": "Other"})
    assert_problem(r, 409, "conflict", detail="cannot be renamed")
    assert calls.platform.adapters.get(UPDATES).is_enabled


async def test_errors(calls: Api) -> None:
    for method, path, body in [
        ("GET", "/adapters/Nobody", None),
        ("PATCH", "/adapters/Nobody", {"enabled": True}),
        ("POST", "/adapters/Nobody/enable", None),
        ("POST", "/adapters/Nobody/disable", None),
        ("DELETE", "/adapters/Nobody", None),
    ]:
        r = await calls.admin.request(method, path, json=body)
        assert_problem(r, 404, "unknown-adapter", detail="Nobody")
    r = await calls.admin.post("/adapters", json={"component": "Fax", "reference_name": "F"})
    assert_problem(r, 404, "unknown-adapter", detail="unknown component 'Fax'")
    r = await calls.admin.post("/adapters", json={"component": "DataUpdate", "reference_name": " "})
    assert_problem(r, 422, "invalid", detail="Reference Name")
    r = await calls.admin.post(
        "/adapters",
        json={"component": "DataUpdate", "reference_name": "D", "required_datasets": {"X": "Y"}},
    )
    assert_problem(r, 422, "invalid", detail="dataset role")
    r = await calls.admin.patch(f"/adapters/{XMPP}", json={"colour": "red"})
    assert_problem(r, 422, "invalid-request", detail="colour")


async def test_reading_writing_and_no_token(calls: Api) -> None:
    for path in ("/adapter-kinds", "/adapters", f"/adapters/{XMPP}"):
        assert (await calls.reader.get(path)).status_code == 200
        assert_problem(await calls.anonymous.get(path), 401, "unauthorized")
    writes: list[tuple[str, str, object]] = [
        ("POST", "/adapters", {"component": "DataUpdate", "reference_name": "D"}),
        ("PATCH", f"/adapters/{XMPP}", {"enabled": False}),
        ("POST", f"/adapters/{XMPP}/enable", None),
        ("POST", f"/adapters/{XMPP}/disable", None),
        ("DELETE", f"/adapters/{XMPP}", None),
    ]
    for method, path, body in writes:
        r = await calls.reader.request(method, path, json=body)
        assert_problem(r, 403, "forbidden", detail="read-only")
        r = await calls.anonymous.request(method, path, json=body)
        assert_problem(r, 401, "unauthorized")
    assert [c.reference_name for c in calls.platform.adapters.list()] == [XMPP, UPDATES]
