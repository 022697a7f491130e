"""The /rules resource, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.web.conftest import (
    CALLS,
    UPDATES,
    XMPP,
    Api,
    add_calls,
    alert_rule,
    assert_problem,
    update_rule,
)

#: What the API adds to a rule sent with only the required fields.
DEFAULTS: dict[str, object] = {
    "purpose": "",
    "active": True,
    "trigger": {"create": True, "update": False, "attributes": []},
    "defer_seconds": 0,
    "skip_originating_adapter": False,
}


@pytest.fixture
async def calls(api: Api) -> Api:
    await add_calls(api.platform)
    return api


async def _create(api: Api, rule: dict[str, object]) -> dict[str, object]:
    r = await api.admin.post("/rules", json=rule)
    assert r.status_code == 201, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


async def test_create_read_list_replace_delete(calls: Api) -> None:
    created = await _create(calls, update_rule())
    rule_id = created.pop("id")
    assert isinstance(rule_id, int)
    assert created == {**DEFAULTS, **update_rule()}
    assert calls.platform.rules.get(rule_id).adapter == UPDATES

    r = await calls.admin.get(f"/rules/{rule_id}")
    assert r.status_code == 200 and r.json() == {"id": rule_id, **created}

    alert = await _create(calls, alert_rule())
    assert alert["trigger"] == {"create": True, "update": True, "attributes": ["priority"]}
    r = await calls.reader.get("/rules")
    assert [x["name"] for x in r.json()["rules"]] == ["note open calls", "alert on urgent calls"]
    r = await calls.reader.get("/rules", params={"dataset": CALLS})
    assert len(r.json()["rules"]) == 2
    r = await calls.reader.get("/rules", params={"dataset": "ROOMS"})
    assert r.json() == {"rules": []}

    changed = update_rule("note every call", conditions=None, defer_seconds=30)
    r = await calls.admin.put(f"/rules/{rule_id}", json=changed)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "note every call" and r.json()["defer_seconds"] == 30
    assert calls.platform.rules.get(rule_id).name == "note every call"

    r = await calls.admin.delete(f"/rules/{rule_id}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(await calls.admin.get(f"/rules/{rule_id}"), 404, "rule-not-found")
    assert [x.name for x in calls.platform.rules.list_rules()] == ["alert on urgent calls"]


async def test_activate_and_deactivate(calls: Api) -> None:
    rule_id = (await _create(calls, update_rule()))["id"]
    r = await calls.admin.post(f"/rules/{rule_id}/deactivate")
    assert r.status_code == 200 and r.json()["active"] is False
    assert not calls.platform.rules.get(int(str(rule_id))).is_active
    r = await calls.admin.post(f"/rules/{rule_id}/activate")
    assert r.status_code == 200 and r.json()["active"] is True
    assert calls.platform.rules.get(int(str(rule_id))).is_active


async def test_a_duplicate_name_is_a_409(calls: Api) -> None:
    await _create(calls, update_rule())
    r = await calls.admin.post("/rules", json=update_rule())
    assert_problem(r, 409, "conflict", detail="note open calls")
    other = await _create(calls, update_rule("another"))
    r = await calls.admin.put(f"/rules/{other['id']}", json=update_rule())
    assert_problem(r, 409, "conflict")
    assert sorted(r.name for r in calls.platform.rules.list_rules()) == [
        "another",
        "note open calls",
    ]


async def test_validate(calls: Api) -> None:
    r = await calls.admin.post("/rules/validate", json=alert_rule())
    assert r.status_code == 200 and r.json() == {"valid": True}
    assert calls.platform.rules.list_rules() == []


async def test_missing_settings_are_listed_in_the_consoles_words(calls: Api) -> None:
    rule = alert_rule(settings={"ttl": 0})
    for path in ("/rules/validate", "/rules"):
        r = await calls.admin.post(path, json=rule)
        body = assert_problem(r, 422, "invalid-settings", detail="invalid or incomplete")
        assert body["errors"] == [
            "Required: Recipients",
            "Required: Subject",
            "Required: Message",
            "Time-to-Live: must be 1 or more",
        ]
    assert calls.platform.rules.list_rules() == []
    r = await calls.admin.post("/rules/validate", json=alert_rule(action=""))
    assert assert_problem(r, 422, "invalid-settings")["errors"] == ["Required: Rule Action"]


async def test_invalid_rules_list_every_problem(calls: Api) -> None:
    rule = alert_rule(
        trigger={"create": False, "update": False, "attributes": ["floor"]},
        conditions=[{"path": "ward.name", "op": "equals", "value": "ICU"}],
    )
    r = await calls.admin.post("/rules", json=rule)
    errors = assert_problem(r, 422, "invalid-rule")["errors"]
    assert isinstance(errors, list) and len(errors) == 3, errors
    assert errors[0].startswith("Trigger Events: choose Create Event")
    assert "floor" in errors[1] and errors[2].startswith("Trigger Conditions:")

    r = await calls.admin.post("/rules/validate", json=update_rule(dataset="NOPE"))
    assert assert_problem(r, 422, "invalid-rule")["errors"] == ["Dataset: unknown dataset 'NOPE'"]
    r = await calls.admin.post("/rules/validate", json=update_rule(adapter="Nobody"))
    errors = assert_problem(r, 422, "invalid-rule")["errors"]
    assert errors == ["Adapter: no adapter is named 'Nobody'"]
    r = await calls.admin.post("/rules/validate", json=update_rule(action="Fly"))
    assert "has no action 'Fly'" in str(assert_problem(r, 422, "invalid-rule")["errors"])
    r = await calls.admin.post("/rules/validate", json=update_rule(conditions={"all": 3}))
    assert assert_problem(r, 422, "invalid-rule")["errors"] == [
        "conditions.all: expected a list of conditions, got int"
    ]
    r = await calls.admin.post("/rules/validate", json=update_rule(defer_seconds=-1))
    assert_problem(r, 422, "invalid-request", detail="defer_seconds")
    r = await calls.admin.post("/rules/validate", json=update_rule(colour="red"))
    assert_problem(r, 422, "invalid-request", detail="colour")


async def test_unknown_ids_are_404(calls: Api) -> None:
    for method, path, body in [
        ("GET", "/rules/999", None),
        ("PUT", "/rules/999", update_rule()),
        ("DELETE", "/rules/999", None),
        ("POST", "/rules/999/activate", None),
        ("POST", "/rules/999/deactivate", None),
    ]:
        r = await calls.admin.request(method, path, json=body)
        assert_problem(r, 404, "rule-not-found", detail="999")
    r = await calls.admin.get("/rules", params={"dataset": "NOPE"})
    assert_problem(r, 404, "unknown-dataset")
    r = await calls.admin.get("/rules/export", params={"dataset": "NOPE"})
    assert r.status_code == 200 and r.json() == {"rules": []}


async def test_dry_run(calls: Api) -> None:
    svc = calls.platform.datasets
    urgent = await svc.create(
        CALLS, {"call_id": "call-A1", "bed": "A1", "status": "Open", "priority": 4}
    )
    calm = await svc.create(
        CALLS, {"call_id": "call-B2", "bed": "B2", "status": "Open", "priority": 1}
    )
    body = {"rule": alert_rule(defer_seconds=60), "record_id": urgent.id}
    r = await calls.admin.post("/rules/dry-run", json=body)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["matched"] is True
    assert result["values"] == {"priority": 4}
    assert result["adapter_enabled"] is True and result["would_defer_seconds"] == 60
    settings = result["settings"]
    assert settings["recipients"] == ["nurse-A1"]
    assert settings["subject"] == "Call at A1" and settings["message"] == "Priority 4"
    assert settings["ttl"] == 5 and settings["priority"] == "Normal"

    r = await calls.admin.post("/rules/dry-run", json={**body, "record_id": calm.id})
    assert r.json()["matched"] is False and r.json()["settings"]["subject"] == "Call at B2"
    await calls.platform.adapters.disable(XMPP)
    r = await calls.admin.post("/rules/dry-run", json=body)
    assert r.json()["adapter_enabled"] is False
    assert calls.platform.rules.list_rules() == []

    r = await calls.admin.post("/rules/dry-run", json={**body, "record_id": 999})
    assert_problem(r, 404, "record-not-found")
    bad = {"rule": alert_rule(settings={}), "record_id": urgent.id}
    r = await calls.admin.post("/rules/dry-run", json=bad)
    assert "Required: Recipients" in str(assert_problem(r, 422, "invalid-settings")["errors"])


async def test_export_and_import(calls: Api) -> None:
    await _create(calls, update_rule())
    r = await calls.reader.get("/rules/export")
    assert r.status_code == 200
    exported = r.json()["rules"]
    assert exported == [{**DEFAULTS, **update_rule()}]

    exported[0]["purpose"] = "changed"
    r = await calls.admin.post("/rules/import", json={"rules": [*exported, alert_rule()]})
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "updated": 1}
    assert calls.platform.rules.find("note open calls") is not None
    assert calls.platform.rules.find("alert on urgent calls") is not None
    r = await calls.reader.get("/rules/export", params={"dataset": CALLS})
    assert [x["name"] for x in r.json()["rules"]] == ["alert on urgent calls", "note open calls"]
    assert r.json()["rules"][1]["purpose"] == "changed"

    bad = [update_rule("fine"), alert_rule("broken", settings={}), "not a rule"]
    r = await calls.admin.post("/rules/import", json={"rules": bad})
    errors = assert_problem(r, 422, "invalid-rule")["errors"]
    assert isinstance(errors, list) and len(errors) == 2
    assert errors[0].startswith("#2:") and "Required: Recipients" in errors[0]
    assert errors[1].startswith("#3:")
    assert calls.platform.rules.find("fine") is None


async def test_reading_writing_and_no_token(calls: Api) -> None:
    rule_id = (await _create(calls, update_rule()))["id"]
    for path in ("/rules", f"/rules/{rule_id}", "/rules/export"):
        assert (await calls.reader.get(path)).status_code == 200
        assert_problem(await calls.anonymous.get(path), 401, "unauthorized")
    writes: list[tuple[str, str, object]] = [
        ("POST", "/rules", update_rule("x")),
        ("PUT", f"/rules/{rule_id}", update_rule()),
        ("DELETE", f"/rules/{rule_id}", None),
        ("POST", f"/rules/{rule_id}/activate", None),
        ("POST", f"/rules/{rule_id}/deactivate", None),
        ("POST", "/rules/validate", update_rule()),
        ("POST", "/rules/dry-run", {"rule": update_rule(), "record_id": 1}),
        ("POST", "/rules/import", {"rules": []}),
    ]
    for method, path, body in writes:
        r = await calls.reader.request(method, path, json=body)
        assert_problem(r, 403, "forbidden", detail="read-only")
        r = await calls.anonymous.request(method, path, json=body)
        assert_problem(r, 401, "unauthorized")
    assert [r.name for r in calls.platform.rules.list_rules()] == ["note open calls"]
