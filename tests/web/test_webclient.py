"""``/app``: the web client's files, its configuration and the Web Push service worker's scope."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from carewire.web.app import create_app
from carewire.web.webclient import ASSETS, create_webclient


def _client(assets: Path = ASSETS) -> httpx.AsyncClient:
    app = create_app(None, webclient=create_webclient("example.test", assets=assets))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://h.test")


async def test_app_redirects_to_the_folder_and_serves_the_page() -> None:
    async with _client() as http:
        r = await http.get("/app")
        assert r.status_code == 308
        assert r.headers["location"] == "/app/"
        page = await http.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert 'src="vendor/strophe.umd.min.js"' in page.text
    assert 'type="module" src="js/main.js"' in page.text


async def test_config_names_the_domain_and_is_not_cached() -> None:
    async with _client() as http:
        r = await http.get("/app/config.json")
    assert r.json() == {"domain": "example.test", "websocket_path": "/xmpp-websocket"}
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    [
        "/app/js/main.js",
        "/app/js/xmpp.js",
        "/app/app.css",
        "/app/vendor/strophe.umd.min.js",
        "/app/vendor/strophe.js.LICENSE.txt",
    ],
)
async def test_assets_are_served_with_revalidation(path: str) -> None:
    async with _client() as http:
        r = await http.get(path)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["etag"]


async def test_the_vendored_library_states_its_licence() -> None:
    licence = (ASSETS / "vendor" / "strophe.js.LICENSE.txt").read_text()
    assert "Permission is hereby granted, free of charge" in licence  # MIT


async def test_the_service_worker_may_control_the_whole_client(tmp_path: Path) -> None:
    (tmp_path / "push").mkdir()
    (tmp_path / "push" / "sw.js").write_text("self.addEventListener('push', () => {});\n")
    async with _client(tmp_path) as http:
        r = await http.get("/app/push/sw.js")
    assert r.status_code == 200
    assert r.headers["service-worker-allowed"] == "/app/"
    assert r.headers["content-type"].startswith("text/javascript")


async def test_no_service_worker_is_a_clear_404(tmp_path: Path) -> None:
    async with _client(tmp_path) as http:
        r = await http.get("/app/push/sw.js")
        missing = await http.get("/app/nothing-here.js")
    assert r.status_code == 404
    assert r.text == "no service worker installed\n"
    assert missing.status_code == 404


async def test_no_path_leaves_the_folder() -> None:
    async with _client() as http:
        r = await http.get("/app/..%2f..%2fwebclient.py")
        dotted = await http.get("/app/../web/webclient.py")
    assert r.status_code == 404
    assert "create_webclient" not in dotted.text


async def test_files_are_compressed_for_browsers_that_accept_it() -> None:
    async with _client() as http:
        plain = await http.get("/app/vendor/strophe.umd.min.js", headers={"accept-encoding": ""})
        packed = await http.get(
            "/app/vendor/strophe.umd.min.js", headers={"accept-encoding": "gzip"}
        )
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes it
    assert packed.num_bytes_downloaded < len(plain.content) // 2
