"""The web client's browser tests and benchmark: a whole server with the demo hospital, in process.

A :class:`~carewire.server.Server` runs in the test's event loop on free
loopback ports, with a fake clock that starts at the real time (moving it is
how messages expire and escalations come due without waiting). The demo
hospital (``carewire demo``: staff, beds, patients, nurse-call rules) is
loaded into it; an admin API token raises alerts over REST. Each clinician is
one browser context of one headless Chromium.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from carewire.clock import FakeClock
from carewire.config import CONFIG_FILE, load, render_default
from carewire.demo import load_demo
from carewire.demo_data import load_demo_data, patient_in
from carewire.security.tokens import Role
from carewire.server import Server
from tests.templates import prefill

DOMAIN = "carewire.test"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
#: The level-1 nurse of ICU-101A and the rule that escalates to the backup nurse.
NURSE, BACKUP_RULE = "nurse.adams", "escalate-to-backup-nurse"


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The running server, its REST API, the demo password and the browser."""

    server: Server
    clock: FakeClock
    base_url: str
    api: httpx.AsyncClient
    password: str
    browser: Browser


@contextlib.asynccontextmanager
async def demo_world(tmp_path: Path, browser: Browser) -> AsyncIterator[World]:
    """Start the server with the demo hospital; yield the world; stop everything."""
    (tmp_path / CONFIG_FILE).write_text(render_default(DOMAIN), encoding="utf-8")
    await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    config = load(
        tmp_path,
        env={},
        overrides={"server": {"c2s_port": 0, "c2s_tls_port": 0, "https_port": 0}},
    )
    clock = FakeClock(datetime.now(UTC))
    server = Server(config, clock=clock)
    await server.start()
    try:
        assert server.assembly is not None
        demo = await load_demo(server.assembly, domain=DOMAIN)
        await load_demo_data(server.assembly)
        _, token = await server.assembly.tokens.create("webclient-tests", Role.ADMIN)
        base_url = f"https://127.0.0.1:{server.ports['https']}"
        if server.assembly.uploads is not None:  # shared files by the address the browser knows
            server.assembly.uploads.base_url = base_url
        async with httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            verify=False,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ) as api:
            yield World(
                server=server,
                clock=clock,
                base_url=base_url,
                api=api,
                password=demo.password,
                browser=browser,
            )
    finally:
        await server.stop()


async def new_context(world: World) -> BrowserContext:
    """A browser profile of its own (the server's certificate is self-signed)."""
    return await world.browser.new_context(
        ignore_https_errors=True, viewport={"width": 1024, "height": 768}
    )


async def sign_in(
    world: World, login: str, context: BrowserContext | None = None, *, page: Page | None = None
) -> Page:
    """A page of the web client signed in as ``login`` (presence sent, settings read)."""
    if page is None:
        page = await (context or await new_context(world)).new_page()
    await page.goto(f"{world.base_url}/app/")
    await page.get_by_label("User name").fill(login)
    await page.get_by_label("Password").fill(world.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("body[data-ready='true']")).to_be_attached(timeout=15_000)
    return page


async def raise_nurse_call(api: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    """A nurse call from room 101, bed A (ICU) through the REST API: the demo's rule alerts."""
    r = await api.post(
        "/datasets/NURSE_CALLS/records",
        json={
            "values": {
                "call_id": call_id,
                "status": "Open",
                "patient": {"mrn": patient_in("ICU-101A")},
                "bed": {
                    "bed_number": "A",
                    "room": {"room_number": "101", "facility": {"name": "Carewire General"}},
                },
            }
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations
              .filter((v) => ['serious', 'critical'].includes(v.impact))
              .map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target)}));
        }"""
    )
    return found
