"""The ``/metrics`` apps alone: the bearer check, methods, the loopback paths, the token file."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from starlette.types import ASGIApp

from carewire.config import load
from carewire.monitoring.endpoint import ensure_token_file, loopback_app, metrics_app, metrics_token

TOKEN = "s3cret-token-of-the-test"


def render() -> bytes:
    return b"carewire_up 1\n"


async def get(
    app: ASGIApp,
    path: str = "/metrics",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        return await client.request(method, path, headers=headers)


async def test_bearer_token_is_required_and_checked() -> None:
    app = metrics_app(render, TOKEN)
    assert (await get(app)).status_code == 401
    for header in (f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN, f"Basic {TOKEN}", "Bearer "):
        r = await get(app, headers={"Authorization": header})
        assert r.status_code == 401, header
        assert b"carewire_up" not in r.content
    ok = await get(app, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.content == render()
    assert ok.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_only_get() -> None:
    app = metrics_app(render, TOKEN)
    r = await get(app, method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 405 and r.headers["allow"] == "GET"


async def test_the_loopback_app_serves_only_metrics() -> None:
    app = loopback_app(render)
    assert (await get(app)).content == render()
    assert (await get(app, "/")).status_code == 404
    assert (await get(app, "/metrics/x")).status_code == 404


def test_the_token_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = ensure_token_file(tmp_path)
    first = path.read_text()
    assert len(first.strip()) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token_file(tmp_path).read_text() == first
    assert metrics_token(load(tmp_path, env={})) == first.strip()
    configured = load(tmp_path, env={"CAREWIRE_METRICS_TOKEN": TOKEN})
    assert metrics_token(configured) == TOKEN
