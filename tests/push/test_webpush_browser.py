"""The browser side in headless Chromium: push.js's IQs, and sw.js showing a push without PHI.

``/app/push/`` is served from the package's static folder on 127.0.0.1 (a
secure context), ``sw.js`` with ``Service-Worker-Allowed: /app/`` as the web
client's route does. Chromium cannot subscribe with our local push service
(it subscribes only with its vendor's), so the push is delivered to the
service worker through the DevTools protocol (``ServiceWorker.deliverPushMessage``),
as a push service would after decryption.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

import carewire.web
from tests.e2e.conftest import _Uvicorn, headless_chromium, loopback_socket, skip_without_browser

pytestmark = [skip_without_browser(), pytest.mark.e2e]

STATIC = Path(carewire.web.__file__).parent / "static" / "app" / "push"
KEY = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
PAGE = "<!doctype html><title>Carewire</title><p>web client</p>"


async def _file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ("push.js", "sw.js"):
        return Response(status_code=404)
    headers = {"Service-Worker-Allowed": "/app/"} if name == "sw.js" else {}
    return FileResponse(STATIC / name, media_type="text/javascript", headers=headers)


async def _page(_request: Request) -> Response:
    return HTMLResponse(PAGE)


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/app/push/{name}", _file), Route("/app/", _page)])
    sock, _ = loopback_socket()
    server = _Uvicorn(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as chromium:
        yield chromium


async def test_push_js_and_the_service_worker(browser: Browser, site: str) -> None:
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=site)
    page = await context.new_page()
    await page.goto(f"{site}/app/")
    # push.js: the vapid IQ it sends and how it reads the answer; nothing to disable yet.
    result: dict[str, Any] = await page.evaluate(
        """async (key) => {
            const m = await import('/app/push/push.js');
            const sent = [];
            const sendIq = async (xml) => {
                sent.push(xml);
                const answer = `<iq xmlns='jabber:client' type='result'>` +
                    `<vapid xmlns='urn:carewire:webpush:0' key='${key}'/></iq>`;
                return new DOMParser().parseFromString(answer, 'application/xml').documentElement;
            };
            const got = await m.vapidKey(sendIq);
            const disabled = await m.disableWebPush(sendIq);
            return {got, disabled, sent, supported: m.isWebPushSupported(),
                    bytes: m.base64UrlToBytes(key).length};
        }""",
        KEY,
    )
    assert result == {
        "got": KEY,
        "disabled": False,
        "sent": ["<iq type='get'><vapid xmlns='urn:carewire:webpush:0'/></iq>"],
        "supported": True,
        "bytes": 65,
    }
    # sw.js under scope /app/, and a push delivered to it.
    cdp = await context.new_cdp_session(page)
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(
            r["registrationId"] for r in e["registrations"] if r["scopeURL"].endswith("/app/")
        ),
    )
    await cdp.send("ServiceWorker.enable")
    async with asyncio.timeout(30):
        scope = await page.evaluate(
            """async () => {
                const r = await navigator.serviceWorker.register(
                    '/app/push/sw.js', {scope: '/app/'});
                await navigator.serviceWorker.ready;
                // ready resolves while the worker may still be activating: wait for activated.
                const w = r.active;
                if (w.state !== 'activated') {
                    await new Promise((done) => w.addEventListener('statechange', () => {
                        if (w.state === 'activated') done();
                    }));
                }
                return r.scope;
            }"""
        )
    assert scope == f"{site}/app/"
    async with asyncio.timeout(10):
        while not registrations:
            await asyncio.sleep(0.05)
    data = json.dumps({"type": "alert", "count": 2, "id": "9f1c"})
    shown = await _push_until_shown(page, cdp, site, registrations[-1], data)
    assert shown == [
        {"title": "New alert", "body": "2 new alerts: open Carewire", "tag": "carewire-alert"}
    ]
    await context.close()


async def _push_until_shown(
    page: Any, cdp: Any, site: str, registration: str, data: str
) -> list[dict[str, Any]]:
    """Deliver the push and wait for its notification; a loaded machine may drop the first
    delivery while it starts the worker, so it is sent again (same tag: one notification)."""
    for _attempt in range(3):
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": site, "registrationId": registration, "data": data},
        )
        try:
            async with asyncio.timeout(10):
                while True:
                    shown: list[dict[str, Any]] = await page.evaluate(
                        """async () => {
                            const r = await navigator.serviceWorker.ready;
                            return (await r.getNotifications()).map(
                                (n) => ({title: n.title, body: n.body, tag: n.tag}));
                        }"""
                    )
                    if shown:
                        return shown
                    await asyncio.sleep(0.05)
        except TimeoutError:
            continue
    raise AssertionError("no notification within 30 s of three pushes to the service worker")
