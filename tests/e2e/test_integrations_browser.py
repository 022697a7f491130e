"""The Integrations page in a real browser, against a real OpenLDAP (slapd).

One slapd, one console (over HTTPS, the platform as the server wires it,
the status refreshed every second) and one Chromium for the module. An
organisation administrator configures the directory on the page, sees
Connected, syncs, reads Import Results and a per-user report, saves a wrong
bind password and sees Not Connected, then sees the status turn Connected
again without reloading the page once the password is fixed. A second
organisation's run is held by the mass-disable guard and confirmed from the
page. Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_services import console_services
from carewire.config import Config
from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, NewHospital, Organisation
from carewire.identity.ldap.model import LdapSettings, RunState, Trigger
from carewire.identity.ldap.service import LdapService, SyncConfig
from carewire.mail import MemoryMailer
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import ConsoleConfig, Role
from tests.e2e.conftest import CHROMIUM, console_over_tls, loopback_socket, skip_without_browser
from tests.hashing import CHEAP_HASHER
from tests.identity.conftest import unit
from tests.ldapserver import BIND_DN, BIND_PW, Slapd, require_slapd, start_slapd

pytestmark = [skip_without_browser(), pytest.mark.asyncio(loop_scope="module")]

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 1000}
CONNECTED = re.compile(r"^\s*Connected\s*$")
NOT_CONNECTED = re.compile(r"^\s*Not Connected\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """The console over HTTPS and the platform behind it."""

    base_url: str
    platform: Assembly

    @property
    def ldap(self) -> LdapService:
        """The platform's LDAP service (the page's)."""
        assert self.platform.ldap is not None
        return self.platform.ldap


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd for this module; each test syncs a unit (``ou``) of its own."""
    require_slapd()
    yield from start_slapd(tmp_path_factory.mktemp("slapd"), people=5, groups=1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """The console as the server wires it (``console_services``), status refreshed each second."""
    tmp = tmp_path_factory.mktemp("integrations")
    cert, key = tmp / "certs" / "console.pem", tmp / "certs" / "console.key"
    ensure_certificate("carewire.test", cert, key)
    platform = await assemble(
        Options(
            url=f"sqlite+aiosqlite:///{tmp / 'carewire.db'}",
            domain="carewire.test",
            mailer=MemoryMailer(),
            secret_hasher=CHEAP_HASHER,
            directory_sync=SyncConfig(status_interval=1.0, timeout=5.0),
        )
    )
    sock, base_url = loopback_socket()
    wired = console_services(Config(data_dir=tmp), platform, None)
    services = replace(
        wired,
        config=ConsoleConfig(
            session_timeout=timedelta(minutes=20),
            reset_link_ttl=timedelta(minutes=30),
            domain="carewire.test",
            base_url=base_url,
        ),
    )
    assert services.ldap is platform.ldap is not None
    try:
        async with console_over_tls(services, cert, key, sock):
            yield Served(base_url=base_url, platform=platform)
    finally:
        await platform.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def administered_hospital(served: Served, name: str) -> tuple[Organisation, str]:
    """A hospital and a console administrator of it: (organisation, console username)."""
    slug = re.sub(r"[^a-z]", "", name.lower())
    org = await served.platform.directory.organisations.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name=name,
            office_number="(555) 010-0000",
            admin=AdminInvitee(email=f"first@{slug}.example", first_name="Ada", last_name="Min"),
        ),
    )
    username = f"{slug}-admin"
    await served.platform.console.create_user(
        username, Role.ORG_ADMIN, password=GOOD, organisation_id=org.id
    )
    return org, username


async def signed_in(browser: Browser, served: Served, username: str) -> Page:
    context = await browser.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        viewport=LAPTOP,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill(username)
    await page.get_by_label("Password").fill(GOOD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


async def test_configure_sync_report_and_status(
    served: Served, slapd: Slapd, browser: Browser, artifacts: Path
) -> None:
    org, username = await administered_hospital(served, "General Hospital")
    base, uids = unit(slapd, 5)
    page = await signed_in(browser, served, username)
    await (
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    )
    await expect(page.get_by_role("heading", name="Integrations", exact=True)).to_be_visible()
    await expect(page.locator("#ldap-state")).to_contain_text("Not configured")

    # Settings: the connection to slapd (StartTLS, its CA), people and groups in the unit.
    await page.get_by_label("Server URL").fill(slapd.url)
    await page.get_by_label("Bind DN").fill(BIND_DN)
    await page.get_by_label("Bind password").fill(BIND_PW)
    await page.get_by_label("CA file").fill(str(slapd.ca_file))
    await page.locator("#f-base_dn").fill(base)  # its label also matches "Group base DN"
    await page.get_by_label("Group base DN").fill(base)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#banner")).to_contain_text("The settings were saved.")
    await expect(page.locator("#ldap-state")).to_have_text(CONNECTED)
    await expect(page.locator("#f-bind_secret-state")).to_have_text("Set")
    await expect(page.get_by_label("Bind password")).to_have_value("")

    # Sync Users Now: Import Results, then the run's per-user report.
    await page.get_by_role("button", name="Sync Users Now").click()
    await expect(page.locator("#banner")).to_contain_text("The sync finished")
    first_row = page.locator("#import-results tbody tr").first
    await expect(first_row.locator("td").nth(3)).to_have_text("5")  # Created
    await expect(page.locator("#ldap-linked")).to_have_text("5")
    await page.screenshot(path=str(artifacts / "integrations-synced.png"), full_page=True)
    await first_row.get_by_role("link", name=re.compile("^View the report")).click()
    await expect(page.get_by_role("heading", name="Import User Process")).to_be_visible()
    lines = page.locator("#report tbody tr")
    await expect(lines).to_have_count(5)
    await expect(lines.filter(has_text="CREATED")).to_have_count(5)
    await expect(page.get_by_role("link", name="Given0 Family0")).to_be_visible()
    await page.screenshot(path=str(artifacts / "integrations-report.png"), full_page=True)
    await page.get_by_role("link", name="Back to Integrations").click()

    # A wrong bind password: saved, and the status says Not Connected with the reason.
    await page.get_by_label("Bind password").fill("not the bind password")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#banner")).to_contain_text("cannot be reached")
    await expect(page.locator("#ldap-state")).to_have_text(NOT_CONNECTED)
    await expect(page.locator("#ldap-error")).to_be_visible()
    await page.screenshot(path=str(artifacts / "integrations-not-connected.png"), full_page=True)

    # Fixed elsewhere (the API, the CLI): the open page turns Connected without a reload.
    await page.evaluate("window.cwNotReloaded = true")
    settings = await served.ldap.settings(SYSTEM_CALLER, org.id)
    assert settings is not None
    await served.ldap.save(SYSTEM_CALLER, settings, BIND_PW)
    assert await served.ldap.check(org.id)
    await expect(page.locator("#ldap-state")).to_have_text(CONNECTED, timeout=10_000)
    assert await page.evaluate("window.cwNotReloaded === true")
    assert uids


async def test_a_held_mass_disable_is_confirmed_from_the_page(
    served: Served, slapd: Slapd, browser: Browser, artifacts: Path
) -> None:
    org, username = await administered_hospital(served, "Mercy Hospital")
    base, uids = unit(slapd, 4)
    settings = LdapSettings(
        organisation_id=org.id,
        url=slapd.ldaps_url,
        bind_dn=BIND_DN,
        base_dn=base,
        ca_file=str(slapd.ca_file),
    )
    await served.ldap.save(SYSTEM_CALLER, settings, BIND_PW)
    run = await served.ldap.sync(SYSTEM_CALLER, org.id, trigger=Trigger.CLI)
    assert run.counts.created == 4, run.message
    # The filter now matches nobody: a sync would disable every synced user.
    await served.ldap.save(SYSTEM_CALLER, replace(settings, user_filter="(uid=nobody)"), None)
    page = await signed_in(browser, served, username)
    await page.goto(f"/orgs/{org.id}/integrations")
    await page.get_by_role("button", name="Sync Users Now").click()
    held = page.locator("#ldap-held")
    await expect(held).to_contain_text("would disable 4 of 4 synced users")
    await page.screenshot(path=str(artifacts / "integrations-held.png"), full_page=True)
    await held.get_by_role("link", name="View the users it would disable").click()
    lines = page.locator("#report tbody tr")
    await expect(lines.filter(has_text="DISABLED")).to_have_count(4)
    await expect(page.locator("#run-state")).to_have_text("held")
    await page.go_back()
    await page.locator("#ldap-held").get_by_role("link", name="Confirm...").click()
    await expect(
        page.get_by_role("heading", name="Disable the users who left the directory?")
    ).to_be_visible()
    await page.get_by_role("button", name="Confirm and sync").click()
    await expect(page.locator("#banner")).to_contain_text("The sync finished")
    await expect(page.locator("#ldap-held")).to_have_count(0)
    first_row = page.locator("#import-results tbody tr").first
    await expect(first_row.locator("td").nth(6)).to_have_text("4")  # Disabled
    runs, _ = await served.ldap.runs(SYSTEM_CALLER, org.id)
    assert runs[0].state is RunState.DONE and runs[0].counts.disabled == 4
    for login in uids:
        assert not (await served.platform.directory.users.get(SYSTEM_CALLER, login)).can_login
