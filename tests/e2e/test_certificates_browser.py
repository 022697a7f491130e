"""The certificate manager in a real browser: CSR download, a missing field, uploads.

A screenshot of ``/certificates`` goes to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from playwright.async_api import Browser, expect

from tests.e2e.conftest import ServeFactory, skip_without_browser
from tests.e2e.test_adapters_browser import signed_in_page
from tests.security.pki import Pki

pytestmark = skip_without_browser()

CSR = {
    "Country": "US",
    "City": "Fort Wayne",
    "State": "Indiana",
    "Organization": "General Hospital",
    "Organizational Unit": "Engineering",
}


async def test_csr_download_and_a_missing_field(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    page = await signed_in_page(browser, served)
    await page.goto("/certificates")
    await expect(page.get_by_text("Good", exact=True)).to_be_visible()
    await page.screenshot(path=str(artifacts / "certificates.png"), full_page=True)
    await page.get_by_role("link", name="CSR", exact=True).click()
    await expect(page.get_by_text("No CSR in progress.")).to_be_visible()
    await expect(page.get_by_text("Any CSR in progress will be overwritten.")).to_be_visible()
    for label, value in CSR.items():
        if label != "City":
            await page.get_by_label(label, exact=False).first.fill(value)
    await page.get_by_role("button", name="Download Certificate Signing Request").click()
    await expect(page.get_by_role("alert")).to_contain_text("Required: City")
    await expect(page.get_by_label("City")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("City").fill(CSR["City"])
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download Certificate Signing Request").click()
    download = await info.value
    assert download.suggested_filename == "carewire.test.csr.pem"
    path = await download.path()
    csr = x509.load_pem_x509_csr(Path(path).read_bytes())
    assert "CN=carewire.test" in csr.subject.rfc4514_string()
    await page.goto("/certificates?tab=csr")
    await expect(page.get_by_text("General Hospital")).to_be_visible()


async def test_upload_a_ca_signed_certificate_and_a_refused_one(
    serve: ServeFactory, browser: Browser, tmp_path: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    page = await signed_in_page(browser, served)
    pki = Pki()
    now = datetime.now(UTC)
    leaf = pki.leaf(
        ("carewire.test",),
        subject="carewire.test",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )
    bad = tmp_path / "key-first.pem"
    bad.write_text(leaf.key_pem() + leaf.cert_pem())
    good = tmp_path / "chain.pem"
    good.write_text(pki.chain_pem(leaf))
    await page.goto("/certificates")
    await page.get_by_label("Certificate file", exact=True).set_input_files(str(bad))
    await page.get_by_role("button", name="Upload Certificate").click()
    await expect(page.get_by_role("alert")).to_contain_text("The certificate must come first")
    await expect(page.get_by_text("(self-signed)")).to_be_visible()
    await page.get_by_label("Certificate file", exact=True).set_input_files(str(good))
    await page.get_by_role("button", name="Upload Certificate").click()
    await expect(page.get_by_text("The certificate has been uploaded.")).to_be_visible()
    await expect(page.get_by_text("Test Intermediate CA")).to_be_visible()
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download Certificate").click()
    download = await info.value
    text = Path(await download.path()).read_text()
    assert text.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in text
