"""XEP-0363 with a real client: slixmpp's ``xep_0363`` plugin uploads, then the file comes back.

A whole server runs in the test's process (STARTTLS for XMPP, its HTTPS
listener for the files, the self-signed certificate it makes). slixmpp finds
``upload.DOMAIN`` by service discovery, asks for a slot and PUTs the file
with aiohttp; the same aiohttp session then GETs it. The client trusts the
server's certificate and resolves the domain to 127.0.0.1, as a client with
that certificate installed and a hosts-file entry would: that is the only
configuration given to it; the TLS handshake verifies the certificate and
host name.
"""

from __future__ import annotations

import io
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import slixmpp
from aiohttp.abc import AbstractResolver, ResolveResult
from slixmpp.plugins.xep_0363 import http_upload

from carewire.config import CONFIG_FILE, load, render_default
from carewire.core.accounts import AccountInput
from carewire.server import Server
from tests.interop.slix import SlixClient, clients
from tests.templates import prefill

pytestmark = pytest.mark.interop

DOMAIN = "carewire.test"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Reached:
    domain: str
    ports: dict[str, int] = field(default_factory=dict)


class Loopback(AbstractResolver):
    """Resolves every name to 127.0.0.1 (the test's hosts file)."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    (tmp_path / CONFIG_FILE).write_text(render_default(DOMAIN), encoding="utf-8")
    await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    config = load(
        tmp_path,
        env={},
        overrides={"server": {"c2s_port": 0, "c2s_tls_port": 0, "https_port": 0}},
    )
    s = Server(config)
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def slix() -> AsyncIterator[Callable[..., Awaitable[SlixClient]]]:
    async with clients() as make:
        yield make


def trusting(cert: Path) -> Callable[..., aiohttp.ClientSession]:
    """aiohttp sessions that trust ``cert`` and resolve names to the loopback address."""
    context = ssl.create_default_context(cafile=str(cert))

    def session(**kwargs: Any) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=context, resolver=Loopback())
        return aiohttp.ClientSession(connector=connector, **kwargs)

    return session


async def test_slixmpp_uploads_and_downloads_the_same_bytes(
    server: Server,
    slix: Callable[..., Awaitable[SlixClient]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert server.assembly is not None
    await server.assembly.accounts.create(AccountInput(login="nurse", password=PASSWORD))
    session = trusting(server.config.cert_file)
    monkeypatch.setattr(http_upload, "ClientSession", session)

    def plugins(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0363")

    client = await slix(Reached(DOMAIN, server.ports), "nurse", PASSWORD, configure=plugins)
    data = os.urandom(300_000)
    url = await client.plugin["xep_0363"].upload_file(
        "wound photo.jpg",
        size=len(data),
        content_type="image/jpeg",
        input_file=io.BytesIO(data),
        domain=slixmpp.JID(DOMAIN),
        timeout=10,
    )
    assert str(client.plugin["xep_0363"].upload_service) == f"upload.{DOMAIN}"
    assert client.plugin["xep_0363"].max_file_size == 52_428_800
    port = server.ports["https"]
    assert url.startswith(f"https://{DOMAIN}:{port}/upload/")
    assert url.endswith("/wound%20photo.jpg")
    async with session() as http, http.get(url) as got:
        assert got.status == 200
        assert got.headers["Content-Type"] == "image/jpeg"
        assert await got.read() == data
    sealed = [
        p.read_bytes() for p in (server.config.data_dir / "uploads").rglob("*") if p.is_file()
    ]
    assert len(sealed) == 1 and data[:4096] not in sealed[0]
