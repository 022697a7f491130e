"""What the HTTPS port serves before sign-in, fetched over real HTTPS from a running server.

- ``/.well-known/host-meta`` and ``host-meta.json`` (XEP-0156 §3) name the WebSocket
  endpoint with the chat domain and the HTTPS port, and a WebSocket opens on that path;
- ``/api/v1/docs`` works offline: the page names no other host, and every file it
  loads comes from Carewire.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from carewire.config import load
from carewire.errors import ConfigError
from carewire.web.host_meta import WEBSOCKET_REL, XRD_NS, websocket_url
from tests.interop.rawclient import client_tls_context
from tests.serverproc import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("public"), accounts=0) as s:
        yield s


@pytest.fixture
def https(server: RunningServer) -> Iterator[httpx.Client]:
    base = f"https://127.0.0.1:{server.ports['https']}"
    with httpx.Client(base_url=base, verify=False, timeout=10) as client:
        yield client


def test_host_meta_names_the_websocket_endpoint(server: RunningServer, https: httpx.Client) -> None:
    port = server.ports["https"]
    expected = f"wss://{server.domain}:{port}/xmpp-websocket"
    r = https.get("/.well-known/host-meta")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xrd+xml")
    assert r.headers["access-control-allow-origin"] == "*"  # web clients live elsewhere
    xrd = ET.fromstring(r.content)
    assert xrd.tag == f"{{{XRD_NS}}}XRD"
    links = {ln.get("rel"): ln.get("href") for ln in xrd.iter(f"{{{XRD_NS}}}Link")}
    assert links == {WEBSOCKET_REL: expected}

    r = https.get("/.well-known/host-meta.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.json() == {"links": [{"rel": WEBSOCKET_REL, "href": expected}]}


def test_a_websocket_opens_where_host_meta_points(
    server: RunningServer, https: httpx.Client
) -> None:
    href = https.get("/.well-known/host-meta.json").json()["links"][0]["href"]
    where = urlsplit(href)
    assert (where.hostname, where.port) == (server.domain, server.ports["https"])

    async def open_stream() -> str:
        async with connect(
            f"wss://127.0.0.1:{where.port}{where.path}",  # the domain resolves here
            subprotocols=[Subprotocol("xmpp")],
            ssl=client_tls_context(),
            server_hostname=server.domain,
            proxy=None,
            open_timeout=10,
        ) as ws:
            await ws.send(
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                f"to='{server.domain}' version='1.0'/>"
            )
            reply = await asyncio.wait_for(ws.recv(), 10)
            return reply if isinstance(reply, str) else bytes(reply).decode()

    assert "<open" in asyncio.run(open_stream())


def test_api_docs_load_nothing_from_elsewhere(https: httpx.Client) -> None:
    r = https.get("/api/v1/docs")
    assert r.status_code == 200
    html = r.text
    assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assets += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)  # the OpenAPI document
    assert len(assets) >= 4, assets
    kinds = set()
    for path in assets:
        assert path.startswith("/api/v1/"), path
        got = https.get(path)
        assert got.status_code == 200, path
        assert got.content, path
        kinds.add(got.headers["content-type"].split(";")[0])
    assert {"text/javascript", "text/css", "application/json"} <= kinds, kinds
    assert "SwaggerUIBundle" in https.get("/api/v1/docs/assets/swagger-ui-bundle.js").text
    assert "Apache License" in https.get("/api/v1/docs/assets/LICENSE").text


def test_websocket_url_by_domain_port_or_setting() -> None:
    assert websocket_url("chat.h.example", 8443) == "wss://chat.h.example:8443/xmpp-websocket"
    assert websocket_url("chat.h.example", 443) == "wss://chat.h.example/xmpp-websocket"
    assert websocket_url("chat.h.example", 8443, "wss://web.h.example/ws") == (
        "wss://web.h.example/ws"
    )


def test_websocket_url_setting_must_be_wss(tmp_path: Path) -> None:
    env = {"CAREWIRE_HTTPS_WEBSOCKET_URL": "wss://web.h.example/xmpp"}
    assert load(tmp_path, env=env).https.websocket_url == "wss://web.h.example/xmpp"
    with pytest.raises(ConfigError, match=r"https.websocket_url: expected a wss:// URL"):
        load(tmp_path, env={"CAREWIRE_HTTPS_WEBSOCKET_URL": "http://web.h.example/xmpp"})
