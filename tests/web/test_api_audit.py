"""The API's audit records: refused requests, and every write with before/after or ids only.

On SQLite and PostgreSQL, with the platform's audit trail wired in as
``server.py`` does; requests come from a distinctive client address.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.security.audit_verify import verify_trail
from carewire.security.tokens import TOKEN_BYTES, TOKEN_PREFIX, Role
from carewire.web.api import create_api
from tests.templates import prefill
from tests.web.conftest import BASE_URL, CALLS, UPDATES, add_calls, services_of, update_rule

CLIENT_IP = "203.0.113.9"
SECRET_VALUE = "Distinctive-Bed-Value-8842"
#: Well-formed, but no such token.
BAD_TOKEN = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Audited:
    """The API with its audit trail, and clients from ``CLIENT_IP``."""

    platform: Assembly
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    bad: httpx.AsyncClient


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Audited]:
    platform = await assemble(Options(url=await prefill(db_url), clock=FakeClock()))
    try:
        _, admin_token = await platform.tokens.create("admin-token", Role.ADMIN)
        _, reader_token = await platform.tokens.create("reader-token", Role.READ_ONLY)
        await add_calls(platform)
        app = create_api(replace(services_of(platform), audit=platform.audit))

        def client(token: str | None) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
            return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)

        async with (
            client(admin_token) as admin,
            client(reader_token) as reader,
            client(None) as anonymous,
            client(BAD_TOKEN) as bad,
        ):
            yield Audited(
                platform=platform, admin=admin, reader=reader, anonymous=anonymous, bad=bad
            )
    finally:
        await platform.close()


async def table(platform: Assembly) -> list[dict[str, Any]]:
    """Every row of audit_log, raw."""
    async with platform.db.read("test") as conn:
        result = await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))
        return [dict(r._mapping) for r in result]


async def last(platform: Assembly, action: str) -> dict[str, Any]:
    rows = [r for r in await table(platform) if r["action"] == action]
    assert rows, f"no {action} entry"
    return {**rows[-1], "details": json.loads(rows[-1]["details"])}


async def test_bad_token_is_an_auth_failure_with_the_address(api: Audited) -> None:
    assert (await api.bad.get("/datasets")).status_code == 401
    assert (await api.anonymous.post(f"/datasets/{CALLS}/records", json={})).status_code == 401
    rows = await table(api.platform)
    assert [(r["action"], r["outcome"], r["actor"]) for r in rows] == [
        ("api.auth", "failure", "api"),
        ("api.auth", "failure", "api"),
    ]
    assert [r["target"] for r in rows] == ["GET /datasets", f"POST /datasets/{CALLS}/records"]
    assert {r["remote_ip"] for r in rows} == {CLIENT_IP} and {r["channel"] for r in rows} == {"api"}
    assert json.loads(rows[0]["details"])["reason"] == "the token is not valid"
    assert BAD_TOKEN not in json.dumps(rows, default=str)
    assert (
        await api.bad.get("/datasets", headers={"Authorization": "Bearer x"})
    ).status_code == 401
    assert (await last(api.platform, "api.auth"))["details"] == {"reason": "the token is malformed"}


async def test_read_only_token_writing_is_an_auth_failure(api: Audited) -> None:
    r = await api.reader.post("/rules", json=update_rule())
    assert r.status_code == 403
    entry = await last(api.platform, "api.auth")
    assert entry["actor"] == "api:reader-token" and entry["outcome"] == "failure"
    assert entry["target"] == "POST /rules" and entry["remote_ip"] == CLIENT_IP
    assert "cannot write" in entry["details"]["reason"]


async def test_reads_are_not_write_entries(api: Audited) -> None:
    assert (await api.reader.get("/rules")).status_code == 200
    assert (await api.admin.post("/rules/validate", json=update_rule())).status_code == 200
    assert await table(api.platform) == []


async def test_rule_changes_record_before_and_after(api: Audited) -> None:
    r = await api.admin.post("/rules", json=update_rule())
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    created = await last(api.platform, "rule.create")
    assert created["actor"] == "api:admin-token" and created["target"] == "note open calls"
    assert created["remote_ip"] == CLIENT_IP and created["channel"] == "api"
    assert created["details"]["before"] is None
    assert created["details"]["after"]["settings"] == {"updates": "note=seen #{bed}"}

    changed = update_rule(settings={"updates": "note=later"})
    assert (await api.admin.put(f"/rules/{rule_id}", json=changed)).status_code == 200
    updated = await last(api.platform, "rule.update")
    assert updated["details"]["before"]["settings"] == {"updates": "note=seen #{bed}"}
    assert updated["details"]["after"]["settings"] == {"updates": "note=later"}

    assert (await api.admin.post(f"/rules/{rule_id}/deactivate")).status_code == 200
    deactivated = await last(api.platform, "rule.deactivate")
    assert deactivated["details"]["before"]["active"] is True
    assert deactivated["details"]["after"]["active"] is False

    assert (await api.admin.delete(f"/rules/{rule_id}")).status_code == 204
    deleted = await last(api.platform, "rule.delete")
    assert deleted["details"]["before"]["name"] == "note open calls"
    assert deleted["details"]["after"] is None

    r = await api.admin.post("/rules/import", json={"rules": [update_rule("imported")]})
    assert r.status_code == 200, r.text
    imported = await last(api.platform, "rule.import")
    assert imported["target"] == "imported" and imported["details"]["before"] is None
    assert (await verify_trail(api.platform.audit)).ok


async def test_failed_writes_are_not_recorded_as_done(api: Audited) -> None:
    r = await api.admin.post("/rules", json=update_rule(adapter="nope"))
    assert r.status_code == 422
    assert (await api.admin.delete("/rules/999")).status_code == 404
    assert await table(api.platform) == []


async def test_record_writes_carry_ids_not_values(api: Audited) -> None:
    values = {
        "call_id": SECRET_VALUE,
        "bed": SECRET_VALUE,
        "status": "Closed",
        "note": SECRET_VALUE,
    }
    r = await api.admin.post(f"/datasets/{CALLS}/records", json={"values": values})
    assert r.status_code == 201, r.text
    rec_id = r.json()["id"]
    patch = {"values": {"note": SECRET_VALUE + "-2"}}
    assert (await api.admin.patch(f"/datasets/{CALLS}/records/{rec_id}", json=patch)).is_success
    put = {"values": {**values, "priority": 2}}
    assert (await api.admin.put(f"/datasets/{CALLS}/records", json=put)).is_success
    assert (await api.admin.delete(f"/datasets/{CALLS}/records/{rec_id}")).status_code == 204
    rows = await table(api.platform)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("record.create", f"{CALLS}/{rec_id}"),
        ("record.update", f"{CALLS}/{rec_id}"),
        ("record.upsert", f"{CALLS}/{rec_id}"),
        ("record.delete", f"{CALLS}/{rec_id}"),
    ]
    assert json.loads(rows[0]["details"]) == {"dataset": CALLS, "id": rec_id}
    assert SECRET_VALUE not in json.dumps(rows, default=str)


async def test_adapter_changes_record_before_and_after(api: Audited) -> None:
    r = await api.admin.post(f"/adapters/{UPDATES}/disable")
    assert r.status_code == 200, r.text
    entry = await last(api.platform, "adapter.disable")
    assert entry["target"] == UPDATES
    assert entry["details"]["before"]["enabled"] is True
    assert entry["details"]["after"]["enabled"] is False
    body = {"component": "DataUpdate", "reference_name": "Spare"}
    assert (await api.admin.post("/adapters", json=body)).status_code == 201
    assert (await api.admin.patch("/adapters/Spare", json={"reference_name": "Spare 2"})).is_success
    renamed = await last(api.platform, "adapter.update")
    assert renamed["target"] == "Spare 2"
    assert renamed["details"]["before"]["reference_name"] == "Spare"
    assert (await api.admin.delete("/adapters/Spare 2")).status_code == 204
    removed = await last(api.platform, "adapter.remove")
    assert removed["target"] == "Spare 2" and removed["details"]["after"] is None


async def test_dataset_changes_record_before_and_after(api: Audited) -> None:
    body = {"name": "EQUIPMENT", "attributes": [{"name": "serial", "type": "String", "key": True}]}
    r = await api.admin.post("/datasets", json=body)
    assert r.status_code == 201, r.text
    created = await last(api.platform, "dataset.create")
    assert created["target"] == "EQUIPMENT" and created["details"]["before"] is None
    r = await api.admin.post(
        "/datasets/EQUIPMENT/attributes", json={"name": "colour", "type": "String"}
    )
    assert r.status_code == 201, r.text
    updated = await last(api.platform, "dataset.update")
    names = [a["name"] for a in updated["details"]["after"]["attributes"]]
    assert names == ["serial", "colour"]
    assert [a["name"] for a in updated["details"]["before"]["attributes"]] == ["serial"]
