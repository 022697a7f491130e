"""PHI through the REST API: the attribute flag, audited reads, equality-only filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.security.audit import AuditEntry
from carewire.security.tokens import Role
from carewire.web.api import create_api
from tests.templates import prefill
from tests.web.conftest import BASE_URL, assert_problem, services_of

PATIENTS = "/datasets/PATIENTS/records"
CLIENT_IP = "203.0.113.77"


@dataclass(frozen=True, slots=True, kw_only=True)
class Api:
    """The API with its audit trail wired in (as the server does), clients from ``CLIENT_IP``."""

    platform: Assembly
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    platform = await assemble(Options(url=await prefill(db_url), clock=FakeClock()))
    try:
        _, admin_token = await platform.tokens.create("admin", Role.ADMIN)
        _, reader_token = await platform.tokens.create("reader", Role.READ_ONLY)
        app = create_api(replace(services_of(platform), audit=platform.audit))

        def client(token: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
            return httpx.AsyncClient(
                transport=transport,
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {token}"},
            )

        async with client(admin_token) as admin, client(reader_token) as reader:
            yield Api(platform=platform, admin=admin, reader=reader)
    finally:
        await platform.close()


async def _entries(api: Api, action: str) -> list[AuditEntry]:
    entries, _ = await api.platform.audit.store.entries(action=action, limit=100)
    return entries


async def _admit(api: Api, n: int = 3) -> list[int]:
    ids = []
    for i in range(n):
        r = await api.admin.post(
            PATIENTS,
            json={
                "values": {"mrn": f"M{i}", "first_name": f"Ann{i}", "dob": "1960-01-0" + str(i + 1)}
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_reads_of_phi_write_one_entry_per_request(api: Api) -> None:
    ids = await _admit(api)
    r = await api.reader.get(PATIENTS, params={"filter": "mrn:in:M0,M2"})
    assert r.status_code == 200, r.text
    assert [rec["values"]["first_name"] for rec in r.json()["records"]] == ["Ann0", "Ann2"]
    r = await api.reader.get(f"{PATIENTS}/{ids[1]}")
    assert r.json()["values"]["mrn"] == "M1"
    # Datasets without PHI are not read audits.
    assert (await api.reader.get("/datasets/FACILITIES/records")).status_code == 200

    reads = await _entries(api, "phi.read")
    assert len(reads) == 2
    one, many = reads[0].event, reads[1].event
    assert many.actor == "api:reader" and many.target == "PATIENTS"
    assert many.details == {"dataset": "PATIENTS", "ids": [ids[0], ids[2]]}
    assert one.target == f"PATIENTS/{ids[1]}" and one.details["ids"] == [ids[1]]
    assert one.remote_ip == many.remote_ip == CLIENT_IP  # where from
    assert "Ann" not in repr([e.event for e in reads])


async def test_range_and_sort_on_phi_are_422(api: Api) -> None:
    await _admit(api, 1)
    r = await api.reader.get(PATIENTS, params={"filter": "dob:lt:1970-01-01"})
    assert_problem(r, 422, "phi-field", detail="is PHI, stored encrypted")
    r = await api.reader.get(PATIENTS, params={"sort": "last_name"})
    assert_problem(r, 422, "phi-field")
    r = await api.reader.get(PATIENTS, params={"filter": "dob:eq:1960-01-01"})
    assert r.json()["total"] == 1


async def test_the_phi_flag_in_definitions_and_its_changes(api: Api) -> None:
    r = await api.reader.get("/datasets/PATIENTS")
    flags = {a["name"]: a["phi"] for a in r.json()["attributes"]}
    assert flags["mrn"] and flags["dob"] and flags["last_name"] and not flags["sex"]

    r = await api.admin.post(
        "/datasets/PATIENTS/attributes", json={"name": "nickname", "type": "String", "phi": True}
    )
    assert r.status_code == 201, r.text
    await api.admin.post(PATIENTS, json={"values": {"mrn": "X", "sex": "F", "nickname": "Bee"}})
    r = await api.admin.patch("/datasets/PATIENTS/attributes/sex", json={"phi": True})
    assert r.status_code == 200, r.text
    assert {a["name"]: a["phi"] for a in r.json()["attributes"]}["sex"] is True
    r = await api.reader.get(PATIENTS, params={"filter": "sex:eq:F"})
    assert r.json()["total"] == 1 and r.json()["records"][0]["values"]["nickname"] == "Bee"
    [change, *_] = await _entries(api, "dataset.update")
    assert change.event.target == "PATIENTS" and change.event.actor == "api:admin"

    r = await api.admin.patch("/datasets/PATIENTS/attributes/mrn", json={"phi": False})
    assert_problem(r, 422, "invalid-definition", detail="built-in PHI attribute stays")
    r = await api.admin.patch("/datasets/PATIENTS/attributes/nope", json={"phi": True})
    assert_problem(r, 422, "invalid-definition", detail="no such attribute")
    r = await api.admin.patch("/datasets/NOPE/attributes/x", json={"phi": True})
    assert_problem(r, 404, "unknown-dataset")
    r = await api.admin.patch("/datasets/PATIENTS/attributes/sex", json={"phi": "maybe"})
    assert r.status_code == 422
    r = await api.reader.patch("/datasets/PATIENTS/attributes/sex", json={"phi": False})
    assert r.status_code == 403
