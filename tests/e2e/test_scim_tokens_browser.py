"""The SCIM Provisioning page in a real browser, and its token used by a real SCIM client.

One HTTPS server (uvicorn, TLS, 127.0.0.1) for the module serves the console as
the server wires it (``console_services``) and ``/scim/v2`` beside it, on
one SQLite platform whose links point at that server. An organisation
administrator creates a token on the page, an HTTP client provisions a user
with it over TLS, the administrator revokes it on the page, and the client's
next request is refused with 401. Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from starlette.applications import Starlette
from starlette.routing import Mount

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_scim import scim_provisioning
from carewire.assembly_services import console_services
from carewire.config import Config
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    DirectoryConfig,
    NewHospital,
)
from carewire.identity.scim.service import SCIM_PATH
from carewire.mail import MemoryMailer
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import ConsoleConfig, Role
from carewire.web.console import create_console
from carewire.web.scim import create_scim_app
from tests.e2e.conftest import (
    app_over_tls,
    headless_chromium,
    loopback_socket,
    skip_without_browser,
)
from tests.hashing import CHEAP_HASHER
from tests.identity.scim_world import SCIM_JSON, new_user

pytestmark = [skip_without_browser(), pytest.mark.asyncio(loop_scope="module")]

GOOD = "correct horse battery"
DOMAIN = "carewire.test"


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """The running server.

    Attributes:
        base_url: ``https://127.0.0.1:<port>`` (the console; SCIM below ``/scim/v2``).
        platform: The services behind it.
        cert: The server's self-signed certificate (what the SCIM client trusts).
    """

    base_url: str
    platform: Assembly
    cert: Path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("scim-browser")
    cert, key = tmp / "certs" / "server.pem", tmp / "certs" / "server.key"
    ensure_certificate(DOMAIN, cert, key)
    sock, base_url = loopback_socket()
    platform = await assemble(
        Options(
            url=f"sqlite+aiosqlite:///{tmp / 'carewire.db'}",
            domain=DOMAIN,
            mailer=MemoryMailer(),
            secret_hasher=CHEAP_HASHER,
            directory=DirectoryConfig(domain=DOMAIN, link_base=base_url),
        )
    )
    wired = console_services(Config(data_dir=tmp), platform, None)
    services = replace(
        wired,
        config=ConsoleConfig(
            session_timeout=timedelta(minutes=20),
            reset_link_ttl=timedelta(minutes=30),
            domain=DOMAIN,
            base_url=base_url,
        ),
    )
    app = Starlette(
        routes=[
            Mount(SCIM_PATH, create_scim_app(scim_provisioning(platform))),
            Mount("/", create_console(services)),
        ]
    )
    try:
        async with app_over_tls(app, cert, key, sock):
            yield Served(base_url=base_url, platform=platform, cert=cert)
    finally:
        await platform.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with headless_chromium() as browser:
        yield browser


def scim_client(served: Served, base_url: str, token: str) -> httpx.AsyncClient:
    """A SCIM client over TLS that trusts only the server's certificate (issued for the domain)."""
    context = ssl.create_default_context(cafile=str(served.cert))
    context.check_hostname = False  # reached at 127.0.0.1; the certificate names the domain
    return httpx.AsyncClient(
        base_url=base_url,
        verify=context,
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON},
    )


async def signed_in(chromium: Browser, served: Served, username: str) -> Page:
    context = await chromium.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        viewport={"width": 1366, "height": 900},
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill(username)
    await page.get_by_label("Password").fill(GOOD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


async def test_create_use_revoke_then_refused(
    served: Served, chromium: Browser, artifacts: Path
) -> None:
    platform = served.platform
    general = await platform.directory.organisations.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name="General Hospital",
            office_number="(555) 010-0000",
            admin=AdminInvitee(email="first@general.example", first_name="Ada", last_name="Min"),
        ),
    )
    await platform.console.create_user(
        "gh-admin", Role.ORG_ADMIN, password=GOOD, organisation_id=general.id
    )
    page = await signed_in(chromium, served, "gh-admin")
    nav = page.get_by_role("navigation", name="Main")
    await nav.get_by_role("link", name="Organization", exact=True).click()
    await page.get_by_role("link", name="SCIM Provisioning").click()
    await expect(page.get_by_role("heading", name="SCIM Provisioning", level=1)).to_be_visible()
    await expect(page.get_by_text("No SCIM tokens yet.")).to_be_visible()

    await page.get_by_role("textbox", name="Name").fill("entra-id")
    await expect(page.get_by_label("Mail an invitation to users it creates")).to_be_checked()
    await page.get_by_role("button", name="Create Token").click()
    await expect(page.get_by_role("heading", name="Token entra-id created")).to_be_visible()
    token = await page.get_by_label("SCIM token (Authorization: Bearer)").input_value()
    scim_url = await page.get_by_label("SCIM base URL (Tenant URL)").input_value()
    assert token.startswith("cwscim_") and scim_url == served.base_url + SCIM_PATH
    await page.screenshot(path=str(artifacts / "scim-token-created.png"), full_page=True)

    async with scim_client(served, scim_url, token) as client:
        r = await client.post("/Users", json=new_user("ann.lee@general.example"))
        assert r.status_code == 201, r.text
        r = await client.get("/Users", params={"filter": 'userName eq "ANN.LEE@general.example"'})
        assert r.status_code == 200 and r.json()["totalResults"] == 1
        assert (await platform.directory.users.get(SYSTEM_CALLER, "ann.lee")).organisation_id == (
            general.id
        )

        await page.goto(f"/orgs/{general.id}/scim-tokens")
        row = page.get_by_role("row", name="entra-id")
        await expect(row).to_contain_text("console:gh-admin")
        await expect(row).to_contain_text("Active")
        await expect(row.get_by_role("cell").nth(3)).not_to_have_text("Never")  # last used
        await expect(page.get_by_text(token)).to_have_count(0)  # shown once
        await row.get_by_role("link", name="Revoke entra-id").click()
        await expect(page.get_by_role("heading", name="Revoke SCIM Token")).to_be_visible()
        await page.get_by_role("button", name="Revoke").click()
        await expect(page.get_by_role("status")).to_have_text("The SCIM token was revoked.")
        await expect(row).to_contain_text("Revoked ")
        await expect(row.get_by_role("link", name="Revoke entra-id")).to_have_count(0)
        await page.screenshot(path=str(artifacts / "scim-token-revoked.png"), full_page=True)

        r = await client.get("/Users")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "revoked" in r.json()["detail"]
