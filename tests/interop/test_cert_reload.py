"""A certificate uploaded through the API is used by new connections; open ones keep theirs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.interop.helpers import assert_healthy, log_tail, own_server, raw_login
from tests.interop.rawclient import HOST, RawClient, client_tls_context
from tests.security.pki import Pki
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with own_server(tmp_path_factory, "cert-reload", env={}, accounts=4) as s:
        yield s


async def https_certificate(port: int, domain: str) -> bytes:
    """The DER certificate a new HTTPS connection is offered."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, port, ssl=client_tls_context(), server_hostname=domain), 10
    )
    try:
        obj = writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        der = obj.getpeercert(binary_form=True)
        assert der is not None
        return der
    finally:
        writer.close()


def peer_der(client: RawClient) -> bytes:
    assert client.ssl_object is not None
    der = client.ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return der


async def test_upload_applies_to_new_connections(server: RunningServer) -> None:
    original = x509.load_pem_x509_certificate(
        (server.data_dir / "certs/xmpp.pem").read_bytes()
    ).public_bytes(Encoding.DER)
    old = await raw_login(server)  # STARTTLS, kept open across the change
    assert peer_der(old) == original

    r = server.cli("token", "create", "cert-reload", "--role", "admin")
    assert r.returncode == 0, r.stderr
    now = datetime.now(UTC)
    pki = Pki()
    leaf = pki.leaf(
        [server.domain],
        subject=server.domain,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=90),
    )
    async with httpx.AsyncClient(
        base_url=f"https://{HOST}:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as api:
        r2 = await api.post("/certificates/xmpp", content=pki.chain_pem(leaf))
        assert r2.status_code == 200, r2.text + log_tail(server)
        assert r2.json()["issuer"] == "CN=Test Intermediate CA"
    new = leaf.cert.public_bytes(Encoding.DER)

    # New connections: direct TLS with SCRAM-PLUS (the channel binding follows the
    # certificate), STARTTLS, and HTTPS.
    login, password = server.account()
    fresh = await RawClient.login(
        server.ports["c2s_tls"],
        login,
        password,
        domain=server.domain,
        direct_tls=True,
        mechanism="SCRAM-SHA-256-PLUS",
    )
    assert peer_der(fresh) == new
    await assert_healthy(fresh)
    starttls = await raw_login(server)
    assert peer_der(starttls) == new
    assert await https_certificate(server.ports["https"], server.domain) == new

    # The connection opened before the upload still works, with the old certificate.
    assert peer_der(old) == original
    await old.send(" ")  # a whitespace keepalive (RFC 6120 §4.6.1)
    await assert_healthy(old)
    for client in (old, fresh, starttls):
        await client.aclose()
    assert "TLS certificate reloaded" in server.log()
