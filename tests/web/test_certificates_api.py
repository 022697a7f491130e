"""The /certificates resources: details, download, upload, delete, CSR and push certificates."""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.security.cert_manager import CertificateManager
from carewire.security.certificates import create_self_signed
from carewire.security.tokens import Role
from carewire.web.api import create_api
from tests.security.pki import DOMAIN, NOW, Pki, issue, p12
from tests.web.conftest import assert_problem, client, services_of

CSR = {
    "country": "US",
    "city": "Fort Wayne",
    "state": "Indiana",
    "organization": "General Hospital",
    "unit": "Engineering",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CertApi:
    platform: Assembly
    manager: CertificateManager
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    db: Path
    changes: list[int]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[CertApi]:
    db = tmp_path / "carewire.db"
    clock = FakeClock(NOW)
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{db}", clock=clock))
    try:
        manager = CertificateManager(tmp_path, DOMAIN, clock, platform.audit)
        create_self_signed(DOMAIN, manager.cert_file, manager.key_file, now=NOW)
        changes: list[int] = []
        manager.add_listener(lambda: changes.append(1))
        _, admin_token = await platform.tokens.create("admin-token", Role.ADMIN)
        _, reader_token = await platform.tokens.create("reader-token", Role.READ_ONLY)
        app = create_api(dataclasses.replace(services_of(platform), certificates=manager))
        async with (
            client(app, admin_token) as admin,
            client(app, reader_token) as reader,
            client(app) as anonymous,
        ):
            yield CertApi(
                platform=platform,
                manager=manager,
                admin=admin,
                reader=reader,
                anonymous=anonymous,
                db=db,
                changes=changes,
            )
    finally:
        await platform.close()


def audit_rows(api: CertApi) -> list[tuple[str, str, str, str]]:
    con = sqlite3.connect(api.db)
    try:
        rows = con.execute(
            "SELECT actor, channel, action, outcome FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    return [tuple(r) for r in rows if r[2].startswith("certificate.")]


async def test_details_and_download(api: CertApi) -> None:
    r = await api.reader.get("/certificates/xmpp")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["domain"] == DOMAIN and body["status"] == "Good"
    assert body["subject"] == body["issuer"] == f"CN={DOMAIN}" and body["self_signed"] is True
    assert body["fingerprint_sha256"] == api.manager.details().fingerprint
    assert body["names"] == [DOMAIN, f"chat.{DOMAIN}", f"patients.{DOMAIN}"]
    r = await api.reader.get("/certificates/xmpp/pem")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-pem-file"
    assert f'filename="{DOMAIN}.pem"' in r.headers["content-disposition"]
    assert r.text == api.manager.download()
    assert_problem(await api.anonymous.get("/certificates/xmpp"), 401, "unauthorized")


async def test_upload_pem_and_json(api: CertApi) -> None:
    pki = Pki()
    leaf = pki.leaf()
    r = await api.admin.post(
        "/certificates/xmpp",
        content=pki.chain_pem(leaf),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["issuer"] == "CN=Test Intermediate CA" and r.json()["self_signed"] is False
    assert api.changes == [1]
    federated = pki.leaf([DOMAIN, f"*.{DOMAIN}"])
    r = await api.admin.post(
        "/certificates/xmpp", json={"pem": pki.chain_pem(federated), "federating": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["names"] == [DOMAIN, f"*.{DOMAIN}"]
    r = await api.admin.post(
        "/certificates/xmpp?federating=true",
        content=pki.chain_pem(leaf),
        headers={"Content-Type": "application/x-pem-file"},
    )
    assert_problem(r, 422, "invalid-certificate", detail="does not cover chat.h.example")
    assert audit_rows(api) == [
        ("api:admin-token", "api", "certificate.upload", "success"),
        ("api:admin-token", "api", "certificate.upload", "success"),
        ("api:admin-token", "api", "certificate.upload", "failure"),
    ]


async def test_upload_refusals(api: CertApi) -> None:
    pki = Pki()
    leaf = pki.leaf()
    r = await api.admin.post("/certificates/xmpp", content=leaf.key_pem() + leaf.cert_pem())
    assert_problem(
        r,
        422,
        "invalid-certificate",
        detail="the certificate must come first; the private key, if included, goes last",
    )
    r = await api.admin.post("/certificates/xmpp", content="nothing here")
    assert_problem(r, 422, "invalid-certificate", detail="not PEM")
    r = await api.admin.post("/certificates/xmpp", json={"federating": True})
    assert_problem(r, 422, "invalid", detail="not a valid upload")
    r = await api.reader.post("/certificates/xmpp", content=pki.chain_pem(leaf))
    assert_problem(r, 403, "forbidden")
    assert api.manager.details().is_self_signed and api.changes == []


async def test_delete(api: CertApi) -> None:
    old = api.manager.details().fingerprint
    assert_problem(await api.reader.delete("/certificates/xmpp"), 403, "forbidden")
    r = await api.admin.delete("/certificates/xmpp")
    assert r.status_code == 200, r.text
    assert r.json()["self_signed"] is True and r.json()["fingerprint_sha256"] != old
    assert api.changes == [1]
    assert [row[2] for row in audit_rows(api)] == ["certificate.delete", "certificate.generate"]


async def test_csr_flow(api: CertApi) -> None:
    assert_problem(
        await api.reader.get("/certificates/csr"), 404, "not-found", detail="No CSR in progress"
    )
    r = await api.admin.post("/certificates/csr", json={"country": "USA", "city": "Fort Wayne"})
    body = assert_problem(
        r,
        422,
        "invalid-settings",
        detail="The information provided is either invalid or incomplete.",
    )
    assert body["errors"] == [
        "Required: State",
        "Required: Organization",
        "Required: Organizational Unit",
        "Country: a two-letter country code (ISO 3166-1), such as US",
    ]
    r = await api.admin.post("/certificates/csr", json=CSR)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-pem-file"
    csr = x509.load_pem_x509_csr(r.content)
    assert csr.subject.rfc4514_string().startswith(f"CN={DOMAIN},OU=Engineering")
    r = await api.reader.get("/certificates/csr")
    assert r.status_code == 200, r.text
    assert r.json() | {"created_at": None} == {"domain": DOMAIN, **CSR, "created_at": None}
    # The CA signs it; the certificate alone (no key) is uploaded.
    csr_key = api.manager._csr_key()
    assert csr_key is not None
    leaf = Pki().leaf(key=csr_key)
    r = await api.admin.post("/certificates/xmpp", content=leaf.cert_pem())
    assert r.status_code == 200, r.text
    assert_problem(await api.reader.get("/certificates/csr"), 404, "not-found")


async def test_apns(api: CertApi) -> None:
    r = await api.reader.get("/certificates/apns")
    assert r.status_code == 200 and r.json() == {"certificates": []}
    push = issue("Push Services: org.example.app")
    data = base64.b64encode(p12(push, b"s3cret")).decode()
    r = await api.admin.post(
        "/certificates/apns",
        json={"certificate": data, "password": "wrong", "production": True},
    )
    assert_problem(r, 422, "invalid-certificate", detail="the password is wrong")
    r = await api.admin.post("/certificates/apns", json={"certificate": "!!", "password": "x"})
    assert_problem(r, 422, "invalid", detail="not valid base64")
    r = await api.admin.post(
        "/certificates/apns",
        json={"certificate": data, "password": "s3cret", "production": True, "next_gen": True},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["slot"] == "next-gen" and out["production"] is True and out["next_gen"] is True
    r = await api.reader.get("/certificates/apns")
    assert [c["slot"] for c in r.json()["certificates"]] == ["next-gen"]
    assert audit_rows(api) == [
        ("api:admin-token", "api", "certificate.apns.upload", "failure"),
        ("api:admin-token", "api", "certificate.apns.upload", "success"),
    ]


async def test_without_a_manager(tmp_path: Path) -> None:
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    try:
        _, token = await platform.tokens.create("t", Role.ADMIN)
        async with client(create_api(services_of(platform)), token) as c:
            r = await c.get("/certificates/xmpp")
            assert_problem(r, 404, "not-found", detail="no certificate manager")
    finally:
        await platform.close()


async def test_listed_in_the_openapi_document(api: CertApi) -> None:
    r = await api.anonymous.get("/openapi.json")
    paths = r.json()["paths"]
    assert {"/certificates/xmpp", "/certificates/xmpp/pem", "/certificates/csr"} <= set(paths)
    content = paths["/certificates/xmpp"]["post"]["requestBody"]["content"]
    assert {"text/plain", "application/json"} <= set(content)
