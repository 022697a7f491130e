"""Bearer tokens on the API (RFC 6750): who may read, who may write, and the public documents."""

from __future__ import annotations

from typing import cast

import httpx
import pytest

from carewire.net.context import NetContext
from carewire.web.app import create_app
from tests.web.conftest import BASE_URL, Api, assert_problem, client

#: One request per write endpoint (method, path, JSON body).
WRITES: list[tuple[str, str, object]] = [
    ("POST", "/datasets", {"name": "EQUIPMENT"}),
    ("POST", "/datasets/ROOMS/attributes", {"name": "floor", "type": "String"}),
    (
        "POST",
        "/datasets/ROOMS/links",
        {"name": "wing", "target": "UNITS", "reverse": "wing_rooms", "cardinality": "n:1"},
    ),
    ("POST", "/datasets/FACILITIES/records", {"values": {"name": "Main"}}),
    ("PUT", "/datasets/FACILITIES/records", {"values": {"name": "Main"}}),
    ("PATCH", "/datasets/FACILITIES/records/1", {"values": {"name": "East"}}),
    ("DELETE", "/datasets/FACILITIES/records/1", None),
    ("POST", "/datasets/TEMPLATES/records/1/links/users", {"targets": [1]}),
    ("DELETE", "/datasets/TEMPLATES/records/1/links/users", {"targets": [1]}),
]


async def test_no_token_is_a_401_with_a_challenge(sqlite_api: Api) -> None:
    for method, path, body in [("GET", "/datasets", None), *WRITES]:
        r = await sqlite_api.anonymous.request(method, path, json=body)
        assert_problem(r, 401, "unauthorized", detail="Bearer")
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "Bearer",
        "Bearer not-a-token",
        "Bearer cw_" + "A" * 43,
        "cw_" + "A" * 43,
    ],
)
async def test_invalid_tokens_are_a_401(sqlite_api: Api, authorization: str) -> None:
    r = await sqlite_api.anonymous.get("/datasets", headers={"Authorization": authorization})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_the_token_itself_is_never_echoed(sqlite_api: Api) -> None:
    token = "cw_" + "B" * 43
    r = await sqlite_api.anonymous.get("/datasets", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and token not in r.text


async def test_a_revoked_token_stops_working(sqlite_api: Api) -> None:
    assert (await sqlite_api.admin.get("/datasets")).status_code == 200
    await sqlite_api.platform.tokens.revoke("admin-token")
    r = await sqlite_api.admin.get("/datasets")
    assert_problem(r, 401, "unauthorized", detail="revoked")


async def test_read_only_tokens_read(sqlite_api: Api) -> None:
    await sqlite_api.platform.datasets.create("FACILITIES", {"name": "Main"})
    for path in (
        "/datasets",
        "/datasets/FACILITIES",
        "/datasets/FACILITIES/records",
        "/datasets/FACILITIES/records/1",
    ):
        r = await sqlite_api.reader.get(path)
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_read_only_tokens_cannot_write(
    sqlite_api: Api, method: str, path: str, body: object
) -> None:
    await sqlite_api.platform.datasets.create("FACILITIES", {"name": "Main"})
    sqlite_api.events.clear()
    before = [ds.name for ds in sqlite_api.platform.registry.all()]
    r = await sqlite_api.reader.request(method, path, json=body)
    assert_problem(r, 403, "forbidden", detail="reader-token")
    assert "www-authenticate" not in r.headers
    assert [ds.name for ds in sqlite_api.platform.registry.all()] == before
    assert sqlite_api.events == []
    assert (await sqlite_api.platform.datasets.get("FACILITIES", 1)).values == {"name": "Main"}


async def test_authentication_comes_before_body_validation(sqlite_api: Api) -> None:
    r = await sqlite_api.anonymous.post("/datasets/FACILITIES/records", content=b"{not json")
    assert_problem(r, 401, "unauthorized")
    r = await sqlite_api.reader.post("/datasets/FACILITIES/records", json={"wrong": 1})
    assert_problem(r, 403, "forbidden")


async def test_writes_are_recorded_as_the_token(sqlite_api: Api) -> None:
    r = await sqlite_api.admin.post("/datasets/FACILITIES/records", json={"values": {"name": "M"}})
    assert r.status_code == 201
    [event] = sqlite_api.events
    assert event.origin.actor == "api:admin-token" and event.origin.adapter is None


async def test_use_is_noted_on_the_token(sqlite_api: Api) -> None:
    await sqlite_api.reader.get("/datasets")
    used = {t.name: t.last_used_at for t in await sqlite_api.platform.tokens.list()}
    assert used == {"admin-token": None, "reader-token": sqlite_api.clock.now()}


async def test_the_openapi_document_is_public(sqlite_api: Api) -> None:
    r = await sqlite_api.anonymous.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "Carewire API"
    assert set(doc["paths"]) == {
        "/datasets",
        "/datasets/{name}",
        "/datasets/{name}/attributes",
        "/datasets/{name}/attributes/{attribute}",
        "/datasets/{name}/links",
        "/datasets/{name}/records",
        "/datasets/{name}/records/{record_id}",
        "/datasets/{name}/records/{record_id}/links/{link}",
        "/rules",
        "/rules/export",
        "/rules/import",
        "/rules/validate",
        "/rules/dry-run",
        "/rules/{rule_id}",
        "/rules/{rule_id}/activate",
        "/rules/{rule_id}/deactivate",
        "/adapter-kinds",
        "/adapters",
        "/adapters/{reference_name}",
        "/adapters/{reference_name}/enable",
        "/adapters/{reference_name}/disable",
        "/assignments",
        "/coverage/{login}",
        "/coverage/{login}/release",
        "/deliveries",
        "/deliveries/{delivery_id}",
        "/presence/{login}",
        "/certificates/xmpp",
        "/certificates/xmpp/pem",
        "/certificates/csr",
        "/certificates/apns",
        "/federation/status",
        "/federation/policy",
        "/federation/allowed-domains",
        "/federation/allowed-domains/{domain}",
        "/federation/certificates",
        "/federation/domains/{domain}/certificates",
        "/federation/domains/{domain}/certificates/{sha256}",
        "/organisations",
        "/organisation-names",
        "/organisations/{organisation_id}",
        "/organisations/{organisation_id}/practices",
        "/organisations/{organisation_id}/administrators",
        "/organisations/{organisation_id}/members",
        "/organisations/{organisation_id}/ldap",
        "/organisations/{organisation_id}/ldap/status",
        "/organisations/{organisation_id}/ldap/sync",
        "/organisations/{organisation_id}/ldap/runs",
        "/organisations/{organisation_id}/ldap/runs/{run}",
        "/communities",
        "/communities/{hospital_id}",
        "/communities/{hospital_id}/members",
        "/affiliations",
        "/affiliations/{affiliation_id}",
        "/affiliations/{affiliation_id}/accept",
        "/affiliations/{affiliation_id}/decline",
        "/affiliations/{affiliation_id}/permission",
        "/users",
        "/users/{login}",
        "/users/{login}/convert",
        "/users/{login}/can-login",
        "/users/{login}/unlock",
        "/users/{login}/pin",
        "/users/{login}/pin-reset",
        "/users/{login}/groups",
        "/users/{login}/devices",
        "/users/{login}/devices/{device_id}/notifications",
        "/users/{login}/devices/{device_id}/wipe",
        "/users/{login}/devices/{device_id}",
        "/invitations",
        "/invitations/upload",
        "/invitations/sample.csv",
        "/invitations/resend",
        "/invitations/delete",
        "/invitations/{invitation_id}",
        "/invitations/{invitation_id}/resend",
        "/groups",
        "/groups/import",
        "/groups/{group_id}",
        "/groups/{group_id}/members",
        "/groups/{group_id}/members/remove",
        "/groups/{group_id}/members/{login}",
        "/push/attempts",
        "/push/registrations/{login}",
        "/scim-tokens",
        "/scim-tokens/{name}",
    }
    assert set(doc["paths"]["/datasets/{name}/records"]) == {"get", "post", "put"}
    assert set(doc["paths"]["/datasets/{name}/records/{record_id}"]) == {"get", "patch", "delete"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "RecordPage" in doc["components"]["schemas"]
    docs = await sqlite_api.anonymous.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


async def test_unknown_paths_and_methods_are_problems(sqlite_api: Api) -> None:
    assert_problem(await sqlite_api.admin.get("/nowhere"), 404, "not-found")
    assert_problem(await sqlite_api.admin.delete("/datasets"), 405, "method-not-allowed")


async def test_mounted_under_api_v1(sqlite_api: Api) -> None:
    # The HTTPS app only touches the network context inside /healthz and the WebSocket.
    app = create_app(cast(NetContext, None), sqlite_api.app)
    headers = {"Authorization": f"Bearer {sqlite_api.admin_token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    ) as http:
        r = await http.get("/api/v1/datasets/BEDS")
        assert r.status_code == 200 and r.json()["name"] == "BEDS"
        assert (await http.get("/api/v1/openapi.json")).status_code == 200
        assert (await http.get("/datasets")).status_code == 404
    async with client(app) as anonymous:
        assert_problem(await anonymous.get("/api/v1/datasets"), 401, "unauthorized")
