"""The certificate pages over HTTP: the three tabs, uploads, refusals, roles, CSRF."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import SystemClock
from carewire.security.cert_manager import CertificateManager
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import Role
from carewire.web.console import create_console
from tests.security.pki import Issued, Pki, issue, p12
from tests.web.console.conftest import GOOD, client_for, csrf_of, sign_in
from tests.web.console.test_adapters_pages import console_services

DOMAIN = "h.example"
CSR = {
    "country": "US",
    "city": "Fort Wayne",
    "state": "Indiana",
    "organization": "General Hospital",
    "unit": "Engineering",
}


@dataclass(slots=True, kw_only=True)
class Env:
    platform: Assembly
    certs: CertificateManager
    transport: httpx.ASGITransport

    async def as_user(self, name: str, role: Role = Role.SYSTEM_ADMIN) -> httpx.AsyncClient:
        await self.platform.console.create_user(name, role, email=None, password=GOOD)
        client = client_for(self.transport)
        assert (await sign_in(client, name)).status_code == 303
        return client


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"))
    cert, key = tmp_path / "certs/xmpp.pem", tmp_path / "certs/xmpp.key"
    ensure_certificate(DOMAIN, cert, key)
    certs = CertificateManager(
        tmp_path, DOMAIN, SystemClock(), platform.audit, cert_file=cert, key_file=key
    )
    svc = replace(console_services(platform, tmp_path / "out"), certificates=certs)
    try:
        yield Env(
            platform=platform,
            certs=certs,
            transport=httpx.ASGITransport(app=create_console(svc)),
        )
    finally:
        await platform.close()


def fresh_leaf(pki: Pki, names: tuple[str, ...] = (DOMAIN,)) -> Issued:
    """A leaf valid from yesterday for a year (whatever today is)."""
    now = datetime.now(UTC)
    return pki.leaf(names, not_before=now - timedelta(days=1), not_after=now + timedelta(days=365))


async def token(client: httpx.AsyncClient, tab: str = "federation") -> str:
    r = await client.get(f"/certificates?tab={tab}")
    assert r.status_code == 200
    return csrf_of(r.text)


async def test_federation_tab(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.get("/certificates")
    assert r.status_code == 200
    html = r.text
    for text in ("Federation", "CSR", "APNs", "Domain", "h.example", "Good", "(self-signed)"):
        assert text in html, text
    assert 'href="/certificates?tab=federation" aria-current="page"' in html
    assert 'href="/certificates/download"' in html and 'href="/certificates/delete"' in html
    assert '<label for="certificate">' in html and '<label for="federating">' in html
    assert 'enctype="multipart/form-data"' in html
    r = await client.get("/certificates/download")
    assert r.status_code == 200 and r.text == env.certs.download()
    assert r.headers["content-disposition"] == 'attachment; filename="h.example.pem"'
    assert "PRIVATE KEY" not in r.text


async def test_csr_tab_and_download(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.get("/certificates?tab=csr")
    assert "No CSR in progress." in r.text and "Any CSR in progress will be overwritten." in r.text
    assert r.text.count("* Required") == 5
    data = CSR | {"city": "", "country": "USA", "csrf_token": csrf_of(r.text)}
    r = await client.post("/certificates/csr", data=data)
    assert r.status_code == 400
    assert "The information provided is either invalid or incomplete." in r.text
    assert "<li>Required: City</li>" in r.text and "<li>Country: a two-letter" in r.text
    assert 'id="csr-city" name="city" value="" required aria-invalid="true"' in r.text
    assert 'value="Fort Wayne"' not in r.text and 'value="Indiana"' in r.text
    r = await client.post("/certificates/csr", data=CSR | {"csrf_token": csrf_of(r.text)})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="h.example.csr.pem"'
    csr = x509.load_pem_x509_csr(r.content)
    assert DOMAIN in csr.subject.rfc4514_string() and "L=Fort Wayne" in csr.subject.rfc4514_string()
    r = await client.get("/certificates?tab=csr")
    assert "No CSR in progress." not in r.text and "General Hospital" in r.text


async def test_upload_a_ca_signed_chain(env: Env) -> None:
    client = await env.as_user("alice")
    pki = Pki()
    leaf = fresh_leaf(pki)
    files = {"certificate": ("chain.pem", pki.chain_pem(leaf).encode(), "application/x-pem-file")}
    r = await client.post(
        "/certificates/upload", data={"csrf_token": await token(client)}, files=files
    )
    assert (r.status_code, r.headers["location"]) == (
        303,
        "/certificates?tab=federation&m=uploaded",
    )
    r = await client.get(r.headers["location"])
    assert "The certificate has been uploaded." in r.text and "Test Intermediate CA" in r.text
    assert "(self-signed)" not in r.text
    # Pasted text works too; federating needs the sub-domains.
    data = {"csrf_token": await token(client), "pem": pki.chain_pem(leaf), "federating": "on"}
    r = await client.post("/certificates/upload", data=data)
    assert r.status_code == 400 and "chat.h.example" in r.text
    assert env.certs.details().issuer.endswith("Test Intermediate CA")


async def test_upload_refusals_are_shown(env: Env) -> None:
    client = await env.as_user("alice")
    pki = Pki()
    leaf = fresh_leaf(pki)
    key_first = leaf.key_pem() + leaf.cert_pem()
    files = {"certificate": ("chain.pem", key_first.encode(), "application/x-pem-file")}
    r = await client.post(
        "/certificates/upload", data={"csrf_token": await token(client)}, files=files
    )
    assert r.status_code == 400
    assert "The certificate must come first; the private key, if included, goes last" in r.text
    r = await client.post("/certificates/upload", data={"csrf_token": await token(client)})
    assert r.status_code == 400 and "Required: Certificate" in r.text
    r = await client.post(
        "/certificates/upload", data={"csrf_token": await token(client), "pem": leaf.cert_pem()}
    )
    assert r.status_code == 400 and "no CSR is in progress" in r.text
    assert env.certs.details().is_self_signed


async def test_upload_for_the_csr_in_progress(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.post("/certificates/csr", data=CSR | {"csrf_token": await token(client)})
    csr = x509.load_pem_x509_csr(r.content)
    pki = Pki()
    now = datetime.now(UTC)
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(pki.intermediate.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(pki.intermediate.key, csr.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    leaf = Issued(cert=signed, key=pki.intermediate.key)  # only its certificate is used
    pem = pki.chain_pem(leaf, with_key=False)
    r = await client.post(
        "/certificates/upload", data={"csrf_token": await token(client), "pem": pem}
    )
    assert r.status_code == 303
    assert env.certs.csr_details() is None


async def test_delete_with_confirmation(env: Env) -> None:
    client = await env.as_user("alice")
    before = env.certs.details().fingerprint
    r = await client.get("/certificates/delete")
    assert r.status_code == 200 and "This cannot be undone." in r.text
    r = await client.post("/certificates/delete", data={"csrf_token": csrf_of(r.text)})
    assert (r.status_code, r.headers["location"]) == (303, "/certificates?tab=federation&m=deleted")
    after = env.certs.details()
    assert after.is_self_signed and after.fingerprint != before
    assert "a new self-signed certificate" in (await client.get(r.headers["location"])).text


async def test_push_certificate_upload(env: Env) -> None:
    client = await env.as_user("alice")
    r = await client.get("/certificates?tab=apns")
    for label in ("Certificate", "Production Certificate", "Next Gen", "Password"):
        assert f">{label}</label>" in r.text, label
    assert "Upload APNs Certificate" in r.text and "No push certificate has been uploaded" in r.text
    now = datetime.now(UTC)
    push = issue(
        "push.h.example", not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
    )
    files = {"p12": ("push.p12", p12(push, b"secret"), "application/x-pkcs12")}
    data = {"csrf_token": csrf_of(r.text), "password": "wrong"}
    r = await client.post("/certificates/apns", data=data, files=files)
    assert r.status_code == 400 and "The push certificate cannot be opened" in r.text
    data = {"csrf_token": data["csrf_token"], "password": "secret", "next_gen": "on"}
    r = await client.post("/certificates/apns", data=data, files=files)
    assert (r.status_code, r.headers["location"]) == (303, "/certificates?tab=apns&m=apns")
    r = await client.get(r.headers["location"])
    assert "push.h.example" in r.text and "Next Gen" in r.text
    assert [d.is_next_gen for d in env.certs.apns_details()] == [True]
    data = {"csrf_token": data["csrf_token"], "password": "secret"}
    r = await client.post("/certificates/apns", data=data)
    assert r.status_code == 400 and "Required: Certificate" in r.text


async def test_auditor_sees_but_cannot_change(env: Env) -> None:
    client = await env.as_user("audrey", Role.AUDITOR)
    for tab in ("federation", "csr", "apns"):
        r = await client.get(f"/certificates?tab={tab}")
        assert r.status_code == 200 and '<form method="post" action="/certificates' not in r.text
    assert (await client.get("/certificates/download")).status_code == 200
    assert (await client.get("/certificates/delete")).status_code == 403
    csrf = await token(client)
    for path in (
        "/certificates/upload",
        "/certificates/delete",
        "/certificates/csr",
        "/certificates/apns",
    ):
        r = await client.post(path, data=CSR | {"csrf_token": csrf, "pem": "x"})
        assert r.status_code == 403, path
    assert env.certs.csr_details() is None


async def test_posts_need_the_csrf_token(env: Env) -> None:
    client = await env.as_user("alice")
    before = env.certs.details().fingerprint
    for path in (
        "/certificates/upload",
        "/certificates/delete",
        "/certificates/csr",
        "/certificates/apns",
    ):
        r = await client.post(path, data=CSR)
        assert r.status_code == 403 and "This form has expired" in r.text, path
    assert env.certs.details().fingerprint == before and env.certs.csr_details() is None


async def test_anonymous_is_sent_to_sign_in(env: Env) -> None:
    client = client_for(env.transport)
    for path in ("/certificates", "/certificates/download", "/certificates/delete"):
        r = await client.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/signin"), path
