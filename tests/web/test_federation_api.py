"""``/federation``: status per remote domain, the policy and allow-list, pinned peer
certificates — and every refusal as a problem that says why, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.core.federation import DomainStatus
from carewire.security.tokens import Role
from carewire.web.api import create_api
from tests.federation.peers import PEER, der, peer, sha256
from tests.security.pki import NOW
from tests.storage.conftest import db_url
from tests.templates import prefill
from tests.web.conftest import assert_problem, client, services_of

__all__ = ["db_url"]

LOCAL = "h.example"


@dataclass(frozen=True, slots=True, kw_only=True)
class FedApi:
    platform: Assembly
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[FedApi]:
    options = Options(url=await prefill(db_url), domain=LOCAL, clock=FakeClock(NOW))
    platform = await assemble(options)
    try:
        _, admin_token = await platform.tokens.create("admin-token", Role.ADMIN)
        _, reader_token = await platform.tokens.create("reader-token", Role.READ_ONLY)
        services = dataclasses.replace(
            services_of(platform), audit=platform.audit, federation=platform.federation
        )
        app = create_api(services)
        async with (
            client(app, admin_token) as admin,
            client(app, reader_token) as reader,
            client(app) as anonymous,
        ):
            yield FedApi(platform=platform, admin=admin, reader=reader, anonymous=anonymous)
    finally:
        await platform.close()


async def test_policy_and_allow_list(api: FedApi) -> None:
    r = await api.reader.get("/federation/policy")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "certificates_only": False,
        "open": True,
        "allow": [],
        "updated_by": None,
        "updated_at": None,
    }
    r = await api.admin.post("/federation/allowed-domains", json={"domain": "B.Example."})
    assert r.status_code == 201, r.text
    assert r.json()["open"] is False and r.json()["allow"][0]["domain"] == PEER
    assert r.json()["allow"][0]["added_by"] == "api:admin-token"
    r = await api.admin.post("/federation/allowed-domains", json={"domain": PEER})
    assert r.status_code == 200  # listed already
    r = await api.admin.put(
        "/federation/policy", json={"certificates_only": True, "allow": [PEER, "c.example"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["certificates_only"] is True and [a["domain"] for a in body["allow"]] == [
        PEER,
        "c.example",
    ]
    assert api.platform.federation.trust.policy().certificates_only  # the streams see it
    r = await api.admin.put("/federation/policy", json={"certificates_only": False})
    assert len(r.json()["allow"]) == 2  # without "allow", the list is kept
    r = await api.admin.delete("/federation/allowed-domains/c.example")
    assert r.status_code == 200 and [a["domain"] for a in r.json()["allow"]] == [PEER]
    assert_problem(
        await api.admin.delete(f"/federation/allowed-domains/{PEER}"),
        409,
        "last-allowed-domain",
        detail="open to every domain",
    )
    assert_problem(
        await api.admin.delete("/federation/allowed-domains/x.example"), 404, "unknown-domain"
    )
    r = await api.admin.put("/federation/policy", json={"certificates_only": False, "allow": []})
    assert r.json()["open"] is True
    entries, _ = await api.platform.audit.store.entries(limit=100)
    actions = [e.event.action for e in reversed(entries) if e.event.action.startswith("fed")]
    assert actions == [
        "federation.allow",
        "federation.policy",
        "federation.policy",
        "federation.disallow",
        "federation.policy",
    ]


async def test_bad_domains_and_bodies(api: FedApi) -> None:
    for bad, says in (
        ("*.b.example", "wildcard"),
        ("nurse@b.example", "address"),
        ("b..example", "not a valid domain"),
        ("10.0.0.1", "IP address"),
        (LOCAL, "own domain"),
        ("", "required"),
    ):
        r = await api.admin.post("/federation/allowed-domains", json={"domain": bad})
        assert_problem(r, 422, "invalid-domain", detail=says)
    r = await api.admin.put(
        "/federation/policy", json={"certificates_only": True, "allow": ["ok.example", "*.x"]}
    )
    assert_problem(r, 422, "invalid-domain")
    assert api.platform.federation.trust.policy().certificates_only is False  # unchanged
    assert_problem(await api.admin.put("/federation/policy", json={}), 422, "invalid-request")
    r = await api.admin.post("/federation/allowed-domains", json={"domain": PEER, "x": 1})
    assert_problem(r, 422, "invalid-request")
    assert_problem(
        await api.admin.get("/federation/domains/a..b/certificates"), 422, "invalid-domain"
    )


async def test_pin_list_and_unpin(api: FedApi) -> None:
    cert = peer()
    path = f"/federation/domains/{PEER}/certificates"
    r = await api.admin.post(
        path, content=cert.cert_pem(), headers={"Content-Type": "application/x-pem-file"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == sha256(cert) and body["domain"] == PEER and body["warnings"] == []
    assert body["subject"] == f"CN={PEER}" and body["uploaded_by"] == "api:admin-token"
    assert api.platform.federation.trust.pinned(PEER) == {sha256(cert)}
    soon = peer(days=10)
    r = await api.admin.post(path, json={"pem": soon.cert_pem()})
    assert r.status_code == 201 and r.json()["warnings"] == [
        "the certificate expires on 2026-06-11 00:00 UTC"
    ]
    other = peer("c.example")
    r = await api.admin.post(
        "/federation/domains/C.example/certificates",
        content=der(other),
        headers={"Content-Type": "application/pkix-cert"},
    )
    assert r.status_code == 201 and r.json()["domain"] == "c.example"
    r = await api.reader.get(path)
    assert r.status_code == 200
    assert {c["sha256"] for c in r.json()["certificates"]} == {sha256(cert), sha256(soon)}
    assert r.json()["certificates"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    r = await api.reader.get("/federation/certificates")
    assert [c["domain"] for c in r.json()["certificates"]] == [PEER, PEER, "c.example"]
    assert_problem(await api.admin.post(path, content=cert.cert_pem()), 409, "certificate-exists")
    fingerprint = bytes.fromhex(sha256(soon)).hex(":").upper()
    r = await api.admin.delete(f"{path}/{fingerprint}")
    assert r.status_code == 200 and r.json()["sha256"] == sha256(soon)
    assert api.platform.federation.trust.pinned(PEER) == {sha256(cert)}
    assert_problem(await api.admin.delete(f"{path}/{sha256(soon)}"), 404, "unknown-certificate")
    assert_problem(await api.admin.delete(f"{path}/not-a-hash"), 422, "invalid-fingerprint")


async def test_uploads_that_are_refused(api: FedApi) -> None:
    path = f"/federation/domains/{PEER}/certificates"
    cert = peer()
    for content, says in (
        (b"this is not a certificate", "not a certificate"),
        (b"", "empty"),
        ((cert.cert_pem() + cert.key_pem()).encode(), "private key"),
        (cert.key_pem().encode(), "private key"),
        (peer(days=-3).cert_pem().encode(), "expired"),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    ):
        r = await api.admin.post(path, content=content, headers={"Content-Type": "text/plain"})
        body = assert_problem(r, 422, "invalid-certificate", detail=says)
        assert "PRIVATE KEY" not in str(body)
    r = await api.admin.post(
        path, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, "invalid", detail="not a valid upload")
    assert_problem(
        await api.admin.post(
            "/federation/domains/*.b.example/certificates", content=cert.cert_pem()
        ),
        422,
        "invalid-domain",
    )
    assert await api.platform.federation.trust.certificates() == []
    entries, _ = await api.platform.audit.store.entries(action="federation.pin", limit=100)
    assert len(entries) == 5 and all(e.event.outcome.value == "failure" for e in entries)


async def test_status_per_remote_domain(api: FedApi) -> None:
    board = api.platform.federation.status
    board.node = "node-1"
    board.update(
        DomainStatus(
            domain="c.example",
            direction="out",
            connected=True,
            auth="certificate",
            tls_version="TLSv1.3",
            fingerprint=sha256(peer("c.example")),
            certificate_not_after=NOW + timedelta(days=300),
            since=NOW,
            queued=0,
            stanzas_out=12,
        )
    )
    board.update(
        DomainStatus(
            domain="d.example",
            direction="out",
            connected=False,
            last_error="remote-server-not-found",
            last_error_at=NOW,
            queued=3,
        )
    )
    await api.platform.federation.trust.allow(PEER)
    r = await api.reader.get("/federation/status")
    assert r.status_code == 200, r.text
    domains = {d["domain"]: d for d in r.json()["domains"]}
    assert list(domains) == [PEER, "c.example", "d.example"]
    assert domains[PEER] == {
        "domain": PEER,
        "connected": False,
        "allowed": True,
        "listed": True,
        "pinned_certificates": 0,
        "streams": [],
    }
    (c,) = domains["c.example"]["streams"]
    assert domains["c.example"]["connected"] is True and domains["c.example"]["allowed"] is False
    assert c["auth"] == "certificate" and c["node"] == "node-1" and c["stanzas_out"] == 12
    assert c["fingerprint_sha256"] == sha256(peer("c.example")) and c["tls_version"] == "TLSv1.3"
    (d,) = domains["d.example"]["streams"]
    assert d["last_error"] == "remote-server-not-found" and d["queued"] == 3


async def test_tokens(api: FedApi) -> None:
    assert_problem(await api.anonymous.get("/federation/status"), 401, "unauthorized")
    r = await api.reader.post("/federation/allowed-domains", json={"domain": PEER})
    assert_problem(r, 403, "forbidden")
    r = await api.reader.post(f"/federation/domains/{PEER}/certificates", content=peer().cert_pem())
    assert_problem(r, 403, "forbidden")
    assert api.platform.federation.trust.policy().allow == frozenset()
