"""The adapter pages in a real browser: create, search, Filter Disabled, deactivate, remove.

Screenshots of ``/adapters`` and an adapter's edit page go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from carewire.security.console_auth import Role
from tests.e2e.conftest import Served, ServeFactory, skip_without_browser

pytestmark = skip_without_browser()

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 800}


async def signed_in_page(browser: Browser, served: Served) -> Page:
    """A page signed in as a new system administrator."""
    await served.platform.console.create_user("alice", Role.SYSTEM_ADMIN, email=None, password=GOOD)
    context = await browser.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        viewport=LAPTOP,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill("alice")
    await page.get_by_label("Password").fill(GOOD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def grid_names(page: Page) -> object:
    return page.locator("table.cw-grid tbody th")


async def test_create_search_filter_deactivate_remove(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.ensure_default_adapters("carewire.test")
    page = await signed_in_page(browser, served)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Adapters").click()
    await expect(page.get_by_role("heading", name="Adapters")).to_be_visible()
    await expect(page.get_by_label("Filter Disabled")).to_be_checked()
    await page.get_by_role("link", name="New Adapter").click()
    await expect(page.get_by_role("heading", name="Create a New Adapter")).to_be_visible()
    await page.get_by_label("Component Name").select_option("DataUpdate")
    await page.get_by_label("Reference Name").fill("Ward updater")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("The adapter has been created.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Ward updater Adapter")).to_be_visible()
    await page.get_by_role("link", name="Back to the adapters").click()
    rows = page.locator("table.cw-grid tbody th")
    # the new one is not enabled
    await expect(rows).to_have_text(["Assignment Manager", "DataUpdate", "XMPP"])
    await expect(page.get_by_text("3 of 4")).to_be_visible()
    await page.screenshot(path=str(artifacts / "adapters.png"), full_page=True)
    await page.get_by_label("Filter Disabled").uncheck()
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("table.cw-grid caption")).to_have_text("All Adapters")
    await expect(rows).to_have_text(["Assignment Manager", "DataUpdate", "Ward updater", "XMPP"])
    await page.get_by_label("Search").fill("ward")
    await page.get_by_label("Search").press("Enter")
    await expect(page.locator("table.cw-grid caption")).to_have_text("Adapters Search Results")
    await expect(rows).to_have_text(["Ward updater"])
    await page.get_by_role("link", name="Clear the search").click()
    await expect(rows).to_have_text(["Assignment Manager", "DataUpdate", "Ward updater", "XMPP"])

    # Deactivate the DataUpdate adapter from its edit page.
    await page.get_by_role("link", name="DataUpdate", exact=True).click()
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_role("heading", name="Update Adapter")).to_be_visible()
    await page.get_by_role("button", name="Deactivate").click()
    await expect(page.get_by_text("The adapter has been deactivated")).to_be_visible()
    await expect(page.get_by_label("Enabled")).not_to_be_checked()
    assert not served.platform.adapters.get("DataUpdate").is_enabled

    # Remove it, after the confirmation page.
    await page.get_by_role("link", name="Remove").click()
    await expect(page.get_by_text("This cannot be undone")).to_be_visible()
    await page.get_by_role("link", name="Cancel").click()
    await expect(page).to_have_url(re.compile(r"/adapters/DataUpdate$"))
    await page.get_by_role("link", name="Remove").click()
    await page.get_by_role("button", name="Ok").click()
    await expect(page.get_by_text("The adapter has been removed.")).to_be_visible()
    await page.get_by_label("Filter Disabled").uncheck()
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_text(["Assignment Manager", "Ward updater", "XMPP"])


async def test_xmpp_edit_page_rows_and_problems(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.ensure_default_adapters("carewire.test")
    page = await signed_in_page(browser, served)
    await page.goto("/adapters/XMPP")
    await expect(page.get_by_role("link", name="XMPP Certificate Manager")).to_be_visible()
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Chat Domain")).to_have_value("carewire.test")
    await page.get_by_role("button", name="Add a row to Phone Number Transformations").click()
    await page.get_by_label("Pattern, row 1").first.fill("XXXX")
    await page.get_by_label("Mask, row 1").fill("+1555XXXX")
    await page.get_by_role("button", name="Add a row to Custom Parameters").click()
    await page.get_by_label("Parameter, row 1").fill("site.id")
    await page.get_by_label("Value, row 1").fill("2030")
    await page.get_by_label("Desktop Session Timeout").select_option("1 hour")
    await page.screenshot(path=str(artifacts / "adapter-edit.png"), full_page=True)
    await page.get_by_label("Chat Domain").fill("")
    await page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("The information provided is either invalid or incomplete.")
    await expect(alert).to_contain_text("Required: Chat Domain")
    await expect(page.get_by_label("Mask, row 1")).to_have_value("+1555XXXX")  # kept
    await page.get_by_label("Chat Domain").fill("carewire.test")
    await page.get_by_label("Chat Domain").press("Enter")  # Enter saves
    await expect(page.get_by_text("The adapter has been saved.")).to_be_visible()
    settings = served.platform.adapters.get("XMPP").settings
    assert settings["custom_parameters"] == [{"parameter": "site.id", "value": "2030"}]
    assert settings["desktop_session_timeout"] == "1 hour"


async def test_xmpp_settings_explain_their_sections(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.ensure_default_adapters("carewire.test")
    page = await signed_in_page(browser, served)
    nav = page.get_by_role("navigation", name="Main")
    await nav.get_by_role("link", name="XMPP settings").click()
    await expect(page).to_have_url(re.compile(r"/adapters/XMPP/edit$"))
    for title, words in (
        ("Domain and Help", "change it only when the server moves"),
        ("Sessions", "Default: Off for both"),
        ("Messages", "Defaults: 7 days"),
        ("Roster and Assignments", "Primary and Backup"),
        ("Phone Numbers", "None by default"),
        ("Patients", "five standard details"),
        ("Client Parameters", "client's documentation asks"),
    ):
        section = page.get_by_role("region", name=title, exact=True)
        await expect(section).to_be_visible()
        await expect(section.get_by_role("heading", name=title)).to_be_visible()
        await expect(section.locator(".cw-section-help")).to_contain_text(words)
    # Every setting says what it does, under its field.
    sessions = page.get_by_role("region", name="Sessions", exact=True)
    await expect(sessions.get_by_label("Mobile Session Timeout")).to_have_accessible_description(
        re.compile("in the background this long")
    )
    await expect(page.get_by_text("The datasets this adapter reads and writes")).to_be_visible()
    await page.screenshot(path=str(artifacts / "xmpp-settings.png"), full_page=True)
