"""The console dashboard of a real server in Chromium: people online, an alert and its latency,
the certificate, versions, adapters and listeners, refreshed in place (docs/console.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.conftest import skip_without_browser
from tests.interop.rawclient import RawClient, close_leftover_clients
from tests.monitoring.alerting import raise_and_receive
from tests.serverproc import RunningServer, running_server

pytestmark = [skip_without_browser(), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("dashboard"), accounts=4) as s:
        yield s


@pytest.fixture(autouse=True)
async def _close_raw_clients() -> AsyncIterator[None]:
    yield
    await close_leftover_clients()


async def test_the_dashboard_shows_the_running_system(
    server: RunningServer, browser: Browser, artifacts: Path
) -> None:
    login, password = server.account()
    nurse = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    await nurse.send("<presence/>")
    await raise_and_receive(server, nurse, login)
    # One administrator for chat and the console: the password `carewire init` printed.
    _, admin_password = (server.data_dir / "initial-admin-password.txt").read_text().splitlines()
    context = await browser.new_context(
        base_url=f"https://127.0.0.1:{server.ports['https']}",
        ignore_https_errors=True,
        viewport={"width": 1366, "height": 900},
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill("admin")
    await page.get_by_label("Password").fill(admin_password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="System")).to_be_visible()
    await expect(page.locator("#online-users")).to_have_text("1")
    await expect(page.locator("#online-devices")).to_have_text("1")
    await expect(page.locator("#connections")).to_contain_text("1 XMPP")
    await expect(page.locator("#open-alerts")).to_contain_text("1")
    await expect(page.locator("#failed-deliveries")).to_contain_text("0 rule deliveries")
    # The receipt is committed by the tracking writer within ~50 ms: the refresh shows it.
    await expect(page.locator("#latency-count")).to_have_text("1", timeout=20_000)
    await expect(page.locator("#latency-p99")).to_contain_text(re.compile(r"\d+ (ms|s)"))
    await expect(page.locator("#latency-objective")).to_have_text("p99 ≤ 1.0 s")
    await expect(page.locator("#cert-status")).to_have_text("Good")
    await expect(page.locator("#versions")).to_contain_text("SQLite")
    health = page.locator("#health")
    await expect(health.get_by_role("row", name=re.compile("XMPP Adapter running"))).to_be_visible()
    for listener in ("c2s", "c2s_tls", "https"):
        row = health.get_by_role("row", name=re.compile(f"^{listener} Listener listening"))
        await expect(row).to_be_visible()
    await page.screenshot(path=str(artifacts / "dashboard-system.png"), full_page=True)

    # Refreshed in place: the nurse signs out and the figure follows without a reload.
    before = await page.locator("#system-at").text_content()
    await nurse.aclose()
    await expect(page.locator("#online-users")).to_have_text("0", timeout=25_000)
    assert await page.locator("#system-at").text_content() != before
    await context.close()
