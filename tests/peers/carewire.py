"""A ``carewire serve`` subprocess that federates: s2s on, the test CA, the tests' DNS server.

:func:`start_carewire` initialises a data directory for ``domain``, installs a
certificate from :mod:`tests.peers.pki` as the server's TLS certificate (the one
presented on s2s streams), and serves with

- ``CAREWIRE_S2S_ENABLED=true`` and ``--s2s-port 0`` (``CAREWIRE_S2S_TLS_PORT=0``
  for direct TLS, XEP-0368);
- ``CAREWIRE_S2S_DNS_SERVER=127.0.0.1:PORT`` – SRV and A lookups go to
  :mod:`tests.dnsserver`;
- ``CAREWIRE_S2S_CA_FILE`` – the test CA, trusted for peer certificates.

Once it listens, its SRV records (``_xmpp-server``/``_xmpps-server`` for the
domain and ``chat.<domain>``, target ``localhost``) go into the DNS server, so
Prosody and ejabberd find it. When this build's ``ports.json`` has no ``s2s``
port (federation not built in yet), the caller is skipped, saying so.

:func:`admin_api` is an HTTPS client of the REST API with an admin token, for the
federation policy, the allow-list and pinned certificates (``/api/v1/federation``).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.dnsserver import LOCALHOST, DnsServer
from tests.peers.pki import FederationPki, Issued
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

HOST = "127.0.0.1"


def federation_env(
    dns: DnsServer, ca_file: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a federating test server (see the module)."""
    return server_env(
        {
            "CAREWIRE_S2S_ENABLED": "true",
            "CAREWIRE_S2S_TLS_PORT": "0",
            "CAREWIRE_S2S_DNS_SERVER": dns.address,
            "CAREWIRE_S2S_CA_FILE": str(ca_file),
            **(extra or {}),
        }
    )


def install_certificate(data_dir: Path, cert: Issued) -> None:
    """Make ``cert`` the server's TLS certificate (``[tls] cert``/``key``)."""
    certs = data_dir / "certs"
    (certs / "xmpp.pem").write_text(cert.cert_pem())
    key = certs / "xmpp.key"
    key.write_text(cert.key_pem())
    key.chmod(0o600)


def publish(dns: DnsServer, server: RunningServer) -> None:
    """The server's SRV records (domain and ``chat.`` sub-domain) in the tests' DNS server."""
    for host in (server.domain, f"chat.{server.domain}"):
        dns.xmpp_domain(
            host,
            s2s_port=server.ports["s2s"],
            s2s_tls_port=server.ports.get("s2s_tls"),
            c2s_port=server.ports["c2s"],
            target=LOCALHOST,
        )


@contextmanager
def start_carewire(
    data_dir: Path,
    pki: FederationPki,
    dns: DnsServer,
    *,
    domain: str,
    cert: Issued | None = None,
    accounts: int = 12,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Serve a federating Carewire for ``domain`` until the block ends."""

    ca_file = pki.write_ca(data_dir.parent / f"{data_dir.name}-ca")
    full_env = federation_env(dns, ca_file, env)
    init_data_dir(data_dir, accounts=accounts, env=full_env, domain=domain)
    install_certificate(data_dir, cert or pki.server(domain))
    with serving(data_dir, accounts=accounts, env=full_env, domain=domain) as server:
        assert "s2s" in server.ports, "the server does not serve server-to-server"
        publish(dns, server)
        try:
            yield server
        finally:
            for host in (domain, f"chat.{domain}"):
                dns.remove(host)
    shutil.rmtree(ca_file.parent, ignore_errors=True)


def admin_api(server: RunningServer) -> httpx.AsyncClient:
    """An HTTPS client of ``/api/v1`` with a fresh admin token (``async with`` it)."""
    r = server.cli("token", "create", f"federation-{secrets.token_hex(4)}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return httpx.AsyncClient(
        base_url=f"https://{HOST}:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    )
