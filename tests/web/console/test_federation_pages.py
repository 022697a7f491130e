"""The Federation page and the certificate manager's trusted peer certificates over HTTP:
status per remote domain, policy, partner domains, pins — refusals, roles and CSRF."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.core.federation import DomainStatus
from carewire.security.cert_manager import CertificateManager
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import Role
from carewire.web.console import create_console
from tests.federation.peers import LOCAL, PEER, der, peer, sha256
from tests.hashing import CHEAP_HASHER
from tests.security.pki import NOW
from tests.templates import prefill
from tests.web.console.conftest import GOOD, client_for, csrf_of, sign_in
from tests.web.console.test_adapters_pages import console_services


@dataclass(slots=True, kw_only=True)
class Env:
    platform: Assembly
    transport: httpx.ASGITransport

    async def as_user(self, name: str, role: Role = Role.SYSTEM_ADMIN) -> httpx.AsyncClient:
        await self.platform.console.create_user(name, role, email=None, password=GOOD)
        client = client_for(self.transport)
        assert (await sign_in(client, name)).status_code == 303
        return client


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    clock = FakeClock(NOW)
    platform = await assemble(
        Options(url=url, domain=LOCAL, clock=clock, secret_hasher=CHEAP_HASHER)
    )
    cert, key = tmp_path / "certs/xmpp.pem", tmp_path / "certs/xmpp.key"
    ensure_certificate(LOCAL, cert, key)
    certs = CertificateManager(tmp_path, LOCAL, clock, platform.audit, cert_file=cert, key_file=key)
    svc = replace(
        console_services(platform, tmp_path / "out"),
        certificates=certs,
        federation=platform.federation,
    )
    try:
        yield Env(platform=platform, transport=httpx.ASGITransport(app=create_console(svc)))
    finally:
        await platform.close()


async def _csrf(client: httpx.AsyncClient, path: str = "/federation") -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


async def test_policy_and_partner_domains(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.get("/federation")
    assert r.status_code == 200
    assert "Any domain (no partner domains listed)" in r.text
    assert "No remote domain has connected yet." in r.text
    token = csrf_of(r.text)
    r = await client.post("/federation/allow", data={"csrf_token": token, "domain": " B.Example "})
    assert r.status_code == 303 and r.headers["location"] == "/federation?m=allowed"
    r = await client.get("/federation?m=allowed")
    assert "The domain has been added" in r.text and "Partner domains only" in r.text
    assert f'<th scope="row">{PEER}</th>' in r.text and "by console:alice" in r.text
    r = await client.post("/federation/allow", data={"csrf_token": token, "domain": "*.c.example"})
    assert r.status_code == 400
    assert 'role="alert" id="form-error">' in r.text and "wildcard" in r.text
    assert 'aria-invalid="true"' in r.text and 'value="*.c.example"' in r.text
    r = await client.post(
        "/federation/policy", data={"csrf_token": token, "certificates_only": "on"}
    )
    assert r.status_code == 303
    assert env.platform.federation.trust.policy().certificates_only
    assert "Certificates only</dd>" in (await client.get("/federation")).text
    r = await client.post("/federation/disallow", data={"csrf_token": token, "domain": PEER})
    assert r.status_code == 400 and "last partner domain" in html.unescape(r.text)
    await client.post("/federation/allow", data={"csrf_token": token, "domain": "c.example"})
    r = await client.post("/federation/disallow", data={"csrf_token": token, "domain": PEER})
    assert r.status_code == 303
    assert env.platform.federation.trust.policy().allow == {"c.example"}
    r = await client.post("/federation/open", data={"csrf_token": token})
    assert r.status_code == 303
    assert env.platform.federation.trust.policy().allow == frozenset()
    assert env.platform.federation.trust.policy().certificates_only  # kept
    # Without the form's CSRF token nothing changes.
    r = await client.post("/federation/allow", data={"domain": "d.example"})
    assert r.status_code == 403 and env.platform.federation.trust.policy().allow == frozenset()
    entries, _ = await env.platform.audit.store.entries(limit=100)
    assert [e.event.action for e in reversed(entries) if e.event.action.startswith("fed")] == [
        "federation.allow",
        "federation.policy",
        "federation.allow",
        "federation.disallow",
        "federation.policy",
    ]


async def test_status_per_remote_domain(env: Env) -> None:
    board = env.platform.federation.status
    board.update(
        DomainStatus(
            domain="c.example",
            direction="out",
            connected=True,
            auth="certificate",
            tls_version="TLSv1.3",
            fingerprint="ab" * 32,
            node="n1",
        )
    )
    board.update(
        DomainStatus(
            domain="d.example",
            direction="in",
            connected=False,
            last_error="not-authorized",
            last_error_at=NOW,
            node="n1",
        )
    )
    client = await env.as_user("auditor", Role.AUDITOR)
    r = await client.get("/federation")
    assert r.status_code == 200
    assert "Connected</span>" in r.text and "Certificate" in r.text and "ab" * 32 in r.text
    assert "not-authorized (2026-06-01 00:00 UTC)" in r.text and "Incoming" in r.text
    assert "Your role can view federation but not change it." in r.text
    assert 'action="/federation/allow"' not in r.text
    token = csrf_of((await client.get("/certificates")).text)
    r = await client.post("/federation/allow", data={"csrf_token": token, "domain": PEER})
    assert r.status_code == 403
    r = await client.post("/certificates/peers", data={"csrf_token": token, "domain": PEER})
    assert r.status_code == 403


async def test_org_admins_read_but_do_not_change(env: Env) -> None:
    client = await env.as_user("olga", Role.ORG_ADMIN)
    r = await client.get("/certificates?tab=federation")
    assert r.status_code == 200 and "Trusted peer certificates" in r.text
    assert 'action="/certificates/peers"' not in r.text


async def test_pin_list_and_remove(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.get("/certificates?tab=federation")
    assert "No peer certificate has been uploaded." in r.text
    token = csrf_of(r.text)
    cert = peer()
    files = {"peer_certificate": ("b.pem", cert.cert_pem().encode(), "application/x-pem-file")}
    r = await client.post(
        "/certificates/peers", data={"csrf_token": token, "domain": PEER}, files=files
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/certificates?tab=federation&m=pinned#peers"
    r = await client.get("/certificates?tab=federation&m=pinned")
    assert "The certificate has been pinned." in r.text
    assert sha256(cert) in r.text and "2027-06-01 00:00 UTC" in r.text
    assert env.platform.federation.trust.pinned(PEER) == {sha256(cert)}
    # Pasted text works too; a certificate naming another host is pinned with a warning.
    other = peer("other.example")
    r = await client.post(
        "/certificates/peers",
        data={"csrf_token": token, "domain": PEER, "peer_pem": other.cert_pem()},
    )
    assert r.status_code == 200 and 'id="pin-warnings"' in r.text
    assert "The certificate does not name b.example" in r.text and sha256(other) in r.text
    r = await client.post(
        "/certificates/peers/delete",
        data={"csrf_token": token, "domain": PEER, "sha256": sha256(other)},
    )
    assert r.status_code == 303
    assert env.platform.federation.trust.pinned(PEER) == {sha256(cert)}
    r = await client.post(
        "/certificates/peers/delete",
        data={"csrf_token": token, "domain": PEER, "sha256": sha256(other)},
    )
    assert r.status_code == 400 and "No certificate with SHA-256" in r.text


async def test_pin_refusals(env: Env) -> None:
    client = await env.as_user("alice")
    token = await _csrf(client, "/certificates?tab=federation")
    cert = peer()
    for data, files, says in (
        ({"domain": PEER}, None, "Required: Certificate"),
        ({"domain": PEER, "peer_pem": "hello"}, None, "not a certificate"),
        ({"domain": PEER, "peer_pem": cert.cert_pem() + cert.key_pem()}, None, "private key"),
        (
            {"domain": PEER},
            {"peer_certificate": ("k.pem", cert.key_pem().encode(), "text/plain")},
            "private key",
        ),
        ({"domain": PEER, "peer_pem": peer(days=-2).cert_pem()}, None, "expired"),
        ({"domain": "not a domain", "peer_pem": cert.cert_pem()}, None, "not a valid domain"),
        ({"domain": LOCAL, "peer_pem": cert.cert_pem()}, None, "own domain"),
    ):
        r = await client.post(
            "/certificates/peers", data={"csrf_token": token, **data}, files=files
        )
        assert r.status_code == 400, says
        assert 'role="alert" id="pin-error"' in r.text and says in html.unescape(r.text), says
        assert "BEGIN PRIVATE KEY" not in r.text
    r = await client.post(
        "/certificates/peers",
        data={"csrf_token": token, "domain": PEER},
        files={"peer_certificate": ("b.der", der(cert), "application/pkix-cert")},
    )
    assert r.status_code == 303
    assert await env.platform.federation.trust.certificates() != []
