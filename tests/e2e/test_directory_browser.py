"""The directory pages in a real browser: invite, invitations, resend, profile, wipe device.

An organisation administrator signs in to a console served over HTTPS (the
platform's own directory service, mail kept in memory), invites staff, finds
an invitation by typing in the Email Address filter (filtered as one types),
resends it, opens a user's profile and wipes their device. A second test
uses the Invite Organization type-ahead. Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_services import console_services
from carewire.config import Config
from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    DeviceState,
    NewHospital,
    NewUser,
    Organisation,
    Profile,
)
from carewire.mail import MemoryMailer
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import ConsoleConfig, Role
from carewire.web.console import ConsoleServices
from tests.e2e.conftest import console_over_tls, loopback_socket, skip_without_browser

pytestmark = skip_without_browser()

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 900}


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """A running console with the directory."""

    base_url: str
    platform: Assembly
    mailer: MemoryMailer


@contextlib.asynccontextmanager
async def serve_directory(tmp_path: Path) -> AsyncIterator[Served]:
    """The console as the server wires it (``console_services``), over TLS on 127.0.0.1."""
    cert, key = tmp_path / "certs" / "console.pem", tmp_path / "certs" / "console.key"
    ensure_certificate("carewire.test", cert, key)
    mailer = MemoryMailer()
    platform = await assemble(
        Options(
            url=f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}",
            domain="carewire.test",
            mailer=mailer,
        )
    )
    sock, base_url = loopback_socket()
    wired = console_services(Config(data_dir=tmp_path), platform, None)
    services = ConsoleServices(
        accounts=wired.accounts,
        audit=wired.audit,
        mailer=mailer,
        config=ConsoleConfig(
            session_timeout=timedelta(minutes=20),
            reset_link_ttl=timedelta(minutes=30),
            domain="carewire.test",
            base_url=base_url,
        ),
        registry=wired.registry,
        datasets=wired.datasets,
        directory=wired.directory,
    )
    assert services.directory is platform.directory
    try:
        async with console_over_tls(services, cert, key, sock):
            yield Served(base_url=base_url, platform=platform, mailer=mailer)
    finally:
        await platform.close()


async def hospital(served: Served, name: str) -> Organisation:
    return await served.platform.directory.organisations.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name=name,
            office_number="(555) 010-0000",
            admin=AdminInvitee(
                email=f"first-admin@{name.split()[0].lower()}.example",
                first_name="Ada",
                last_name="Min",
            ),
        ),
    )


async def signed_in_page(browser: Browser, served: Served, username: str) -> Page:
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


async def device_of(served: Served, login: str) -> str:
    """A device record of ``login``, as clinical presence makes one when a client registers."""
    datasets = served.platform.datasets
    users = await datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
    )
    name = f"{login}/handheld"
    await datasets.create(
        "DEVICES",
        {
            "name": name,
            "status": "Registered",
            "vendor": "XMPP",
            "usr": users.records[0].id,
            "last_active_at": datetime.now(UTC),
        },
        origin=Origin(actor="test"),
    )
    return name


async def test_invite_resend_profile_and_wipe(
    tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    async with serve_directory(tmp_path) as served:
        general = await hospital(served, "General Hospital")
        await served.platform.console.create_user(
            "gh-admin", Role.ORG_ADMIN, password=GOOD, organisation_id=general.id
        )
        await served.platform.directory.users.create(
            SYSTEM_CALLER,
            general.id,
            NewUser(
                profile=Profile(first_name="Jane", last_name="Doe", email="jdoe@general.example"),
                login="jdoe",
                pin="5822",
                password=GOOD,
            ),
        )
        device = await device_of(served, "jdoe")
        page = await signed_in_page(browser, served, "gh-admin")
        await expect(page.locator(".who .org")).to_have_text("General Hospital")

        # Invite: Manage Users > Invite Users.
        await (
            page.get_by_role("navigation", name="Main")
            .get_by_role("link", name="Manage Users")
            .click()
        )
        await expect(page.get_by_role("heading", name="Find Users")).to_be_visible()
        await (
            page.get_by_role("navigation", name="Users")
            .get_by_role("link", name="Invite Users")
            .click()
        )
        await page.get_by_label("Email Addresses Separated By Spaces Or Carriage Returns").fill(
            "ann.lee@general.example\nbob.ray@general.example"
        )
        await page.get_by_role("button", name="Invite").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Invitations have been sent successfully."
        )
        await page.screenshot(path=str(artifacts / "directory-invite-users.png"), full_page=True)
        assert len(served.mailer.to("ann.lee@general.example")) == 1

        # Invitations: filter as one types, select, Resend.
        await (
            page.get_by_role("navigation", name="Users")
            .get_by_role("link", name="Invitations")
            .click()
        )
        rows = page.locator("#invitations-results tbody tr")
        await expect(rows).to_have_count(3)
        await page.get_by_label("Email Address").press_sequentially("ann", delay=30)
        await expect(rows).to_have_count(1)  # no button pressed: filtered as typed
        await expect(page).to_have_url(re.compile(r"email=ann"))
        await page.get_by_label("Select ann.lee@general.example").check()
        await page.get_by_label("Selected:").select_option("resend")
        await page.get_by_role("button", name="Apply to the selected invitations").click()
        await expect(
            page.get_by_text("Are you sure you want to resend the selected invitations?")
        ).to_be_visible()
        await expect(
            page.get_by_text(
                "Note: invitations already in the 'Registered' state will not be resent."
            )
        ).to_be_visible()
        await page.screenshot(path=str(artifacts / "directory-resend-confirm.png"), full_page=True)
        await page.get_by_role("button", name="Resend").click()
        await expect(page.get_by_role("status")).to_contain_text("sent again (1)")
        await page.screenshot(path=str(artifacts / "directory-invitations.png"), full_page=True)
        assert len(served.mailer.to("ann.lee@general.example")) == 2
        assert len(served.mailer.to("bob.ray@general.example")) == 1

        # Profile: Find Users > View.
        await page.get_by_role("link", name="Find").click()
        await page.get_by_label("Last Name").fill("doe")
        await page.get_by_role("button", name="Submit").click()
        await page.get_by_role("link", name="View Jane Doe").click()
        await expect(page.get_by_role("heading", name="Update User Profile")).to_be_visible()
        await expect(page.get_by_label("First Name")).to_have_value("Jane")
        status = page.locator(".cw-device-status")
        await expect(status).to_have_text("Device is active. Push notification active.")
        await page.screenshot(path=str(artifacts / "directory-profile.png"), full_page=True)

        # Wipe Device, confirmed.
        await page.get_by_role("link", name=f"Wipe Device {device}").click()
        await expect(page.get_by_role("heading", name="Wipe Device")).to_be_visible()
        await page.get_by_role("button", name="Wipe Device").click()
        await expect(status).to_have_text("Remote wipe requested.")
        await expect(
            page.get_by_role("button", name=f"Delete Device Info {device}")
        ).to_be_visible()
        await page.screenshot(path=str(artifacts / "directory-wiped.png"), full_page=True)
        (found,) = await served.platform.directory.devices.list_for(SYSTEM_CALLER, "jdoe")
        assert found.state is DeviceState.WIPE_REQUESTED


async def test_invite_organisation_type_ahead(
    tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    async with serve_directory(tmp_path) as served:
        general = await hospital(served, "General Hospital")
        await hospital(served, "Other Hospital")
        await served.platform.console.create_user(
            "gh-admin", Role.ORG_ADMIN, password=GOOD, organisation_id=general.id
        )
        page = await signed_in_page(browser, served, "gh-admin")
        await (
            page.get_by_role("navigation", name="Main")
            .get_by_role("link", name="Organization", exact=True)
            .click()
        )
        await expect(page.get_by_role("heading", name="Update Organization")).to_be_visible()
        await page.screenshot(path=str(artifacts / "directory-organization.png"), full_page=True)
        await page.get_by_role("link", name="Invite Existing Organization").click()
        await page.get_by_label("Organization Name").press_sequentially("oth", delay=30)
        choice = page.get_by_label("Other Hospital (hospital)")
        await expect(choice).to_be_visible()  # no button pressed: matches as typed
        await expect(choice).to_be_checked()
        await page.get_by_role("button", name="Invite").click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Invitations have been sent to the Carewire administrators for Other Hospital."
        )
        await page.screenshot(path=str(artifacts / "directory-invite-organization.png"))
        await page.get_by_role("link", name="Close").click()
        await expect(page.get_by_text("Other Hospital (pending)")).to_be_visible()


async def test_an_administrator_sees_only_their_hospitals_users(
    tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    async with serve_directory(tmp_path) as served:
        general = await hospital(served, "General Hospital")
        other = await hospital(served, "Other Hospital")
        directory = served.platform.directory
        for org, login, last in ((general, "mine", "Ownstaff"), (other, "theirs", "Outsider")):
            await directory.users.create(
                SYSTEM_CALLER,
                org.id,
                NewUser(
                    profile=Profile(first_name="Pat", last_name=last, email=f"{login}@x.example"),
                    login=login,
                    pin="5822",
                    password=GOOD,
                ),
            )
        await served.platform.console.create_user(
            "gh-admin", Role.ORG_ADMIN, password=GOOD, organisation_id=general.id
        )
        page = await signed_in_page(browser, served, "gh-admin")
        await (
            page.get_by_role("navigation", name="Main")
            .get_by_role("link", name="Manage Users")
            .click()
        )
        results = page.get_by_role("table")
        await expect(results).to_contain_text("Ownstaff, Pat")
        await expect(results).not_to_contain_text("Outsider")
        await page.get_by_label("Last Name").fill("outsider")
        await page.get_by_role("button", name="Submit").click()
        await expect(page.get_by_text("No users match.")).to_be_visible()
        await page.screenshot(path=str(artifacts / "directory-find-users.png"), full_page=True)
        for path in (
            f"/orgs/{other.id}/user/theirs",
            f"/orgs/{general.id}/user/theirs",
            f"/orgs/{other.id}/users",
            f"/orgs/{other.id}",
        ):
            response = await page.goto(path)
            assert response is not None and response.status == 404, path
            await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
            await expect(page.locator("main")).not_to_contain_text("Outsider")
