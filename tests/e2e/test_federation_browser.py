"""Federation in a real browser: partner domains and the certificates-only switch, a refused
domain, and a peer certificate uploaded, listed and removed on the Certificates page.

A screenshot of ``/federation`` goes to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, expect

from carewire.core.federation import DomainStatus
from tests.e2e.conftest import ServeFactory, skip_without_browser
from tests.e2e.test_adapters_browser import signed_in_page
from tests.federation.peers import PEER, peer, sha256

pytestmark = skip_without_browser()


async def test_policy_partners_and_a_peer_certificate(
    serve: ServeFactory, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    served.platform.federation.status.update(
        DomainStatus(domain="c.example", direction="out", connected=True, auth="dialback")
    )
    page = await signed_in_page(browser, served)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Federation").click()
    await expect(page.get_by_role("heading", name="Federation", exact=True)).to_be_visible()
    status = page.get_by_role("table", name="Streams with each remote domain, as last reported")
    await expect(status.get_by_role("row", name="c.example")).to_contain_text("Connected")
    await expect(status.get_by_role("row", name="c.example")).to_contain_text("Dialback")

    domain = page.get_by_role("textbox", name="Domain")
    await domain.fill("*.b.example")
    await page.get_by_role("button", name="Add Partner Domain").click()
    await expect(page.get_by_role("alert")).to_contain_text("wildcard")
    await expect(page.get_by_role("textbox", name="Domain")).to_have_attribute(
        "aria-invalid", "true"
    )
    await page.get_by_role("textbox", name="Domain").fill("B.Example")
    await page.get_by_role("button", name="Add Partner Domain").click()
    await expect(page.get_by_role("status")).to_contain_text("added to the partner domains")
    partners = page.get_by_role("table", name="Partner domains")
    await expect(partners.get_by_role("row", name=PEER)).to_be_visible()
    await page.get_by_role("checkbox", name="Certificates only").check()
    await page.get_by_role("button", name="Save Policy").click()
    await expect(page.get_by_role("status")).to_contain_text("policy has been saved")
    await expect(page.get_by_role("checkbox", name="Certificates only")).to_be_checked()
    await page.screenshot(path=str(artifacts / "federation.png"), full_page=True)
    assert served.platform.federation.trust.policy().certificates_only

    pem = tmp_path / "b.pem"
    pem.write_text(peer().cert_pem())
    await page.get_by_role("link", name="Certificates", exact=True).first.click()
    peers = page.get_by_role("region", name="Trusted peer certificates")
    await peers.get_by_role("textbox", name="Domain").fill(PEER)
    await peers.get_by_label("Partner's certificate file").set_input_files(str(pem))
    await peers.get_by_role("button", name="Upload Peer Certificate").click()
    await expect(page.get_by_role("status")).to_contain_text("The certificate has been pinned")
    row = page.get_by_role("table", name="Trusted peer certificates by domain").get_by_role(
        "row", name=PEER
    )
    await expect(row).to_contain_text(sha256(peer()))
    assert served.platform.federation.trust.pinned(PEER) == {sha256(peer())}
    await row.get_by_role(
        "button", name=f"Remove the certificate {sha256(peer())[:16]}… of {PEER}"
    ).click()
    await expect(page.get_by_role("status")).to_contain_text("The certificate has been removed")
    await expect(page.get_by_text("No peer certificate has been uploaded.")).to_be_visible()
    assert served.platform.federation.trust.pinned(PEER) == frozenset()
