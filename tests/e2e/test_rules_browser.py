"""The rules pages in a real browser: a rule made through the form, a refused expression.

Screenshots of the rules list, the rule form, the deliveries, the audit
trail and the datasets are saved in ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from carewire.security.console_auth import Role
from tests.e2e.conftest import ServeFactory, skip_without_browser

pytestmark = skip_without_browser()

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 800}


async def fill_rule(page: Page, name: str, updates: str) -> None:
    """Fill the new-rule form: DEVICES, the Data adapter, Update Record, one condition."""
    await page.goto("/rules/new")
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Purpose").fill("Mark registered devices seen")
    await page.get_by_label("Dataset", exact=True).select_option("DEVICES")
    await page.get_by_label("Adapter", exact=True).select_option("Data")
    await page.get_by_role("button", name="Choose").click()
    await page.get_by_label("Rule Action").select_option("Update Record")
    await page.get_by_role("button", name="Choose").click()
    await expect(page.get_by_label("Updates")).to_be_visible()
    await page.get_by_label("Condition 1 path").fill("status")
    await page.get_by_label("Condition 1 operator").select_option("equals")
    await page.get_by_label("Condition 1 value").fill("Registered")
    await page.get_by_label("Updates").fill(updates)


async def test_rule_through_the_form(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.console.create_user("admin", Role.SYSTEM_ADMIN, password=GOOD)
    await served.platform.adapters.create("DataUpdate", "Data", is_enabled=True)
    context = await browser.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        viewport=LAPTOP,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill("admin")
    await page.get_by_label("Password").fill(GOOD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/$"))

    await fill_rule(page, "Seen", "status=Seen")
    await page.screenshot(path=str(artifacts / "rule-form.png"), full_page=True)
    await page.get_by_role("button", name="Save rule").click()
    await expect(page).to_have_url(re.compile(r"/rules\?dataset=DEVICES"))
    await expect(page.get_by_role("link", name="Seen", exact=True)).to_be_visible()
    await expect(page.get_by_text("The rule was saved.")).to_be_visible()
    saved = served.platform.rules.find("Seen")
    assert saved is not None and saved.action == "Update Record"
    assert saved.settings == {"updates": [{"path": "status", "value": "Seen"}]}
    await page.screenshot(path=str(artifacts / "rules.png"), full_page=True)

    await fill_rule(page, "Bad", "status=#{nope}")
    await page.get_by_role("button", name="Save rule").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("The information provided is either invalid or incomplete.")
    await expect(alert).to_contain_text("has no attribute or link 'nope'")
    await expect(page.get_by_label("Updates")).to_have_value("status=#{nope}")
    assert served.platform.rules.find("Bad") is None
    await page.screenshot(path=str(artifacts / "rule-form-error.png"), full_page=True)

    for path, heading, shot in (
        ("/deliveries", "Deliveries", "deliveries.png"),
        ("/audit", "Audit trail", "audit.png"),
        ("/datasets", "Datasets", "datasets.png"),
    ):
        await page.goto(path)
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        await page.screenshot(path=str(artifacts / shot), full_page=True)
    await context.close()
