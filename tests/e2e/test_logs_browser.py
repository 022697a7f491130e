"""The audit and deliveries pages in a real browser: local times, a visible details column,
rows of normal height, and who a delivery notified.

Screenshots of the audit page (a long entry closed and opened) are saved in
``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from carewire.security.audit import AuditEvent, Channel
from carewire.security.console_auth import Role
from tests.e2e.conftest import Served, ServeFactory, skip_without_browser

pytestmark = skip_without_browser()

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 800}
#: A zone half an hour off the hour, so a time shown in UTC or the machine's zone cannot pass.
ZONE = "Asia/Kolkata"
#: The tallest an audit row may be (two lines of text with their padding, a little to spare).
ROW_HEIGHT = 72


async def signed_in_page(browser: Browser, served: Served, **context: object) -> Page:
    await served.platform.console.create_user("admin", Role.SYSTEM_ADMIN, password=GOOD)
    ctx = await browser.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        viewport=LAPTOP,  # type: ignore[arg-type]
        **context,  # type: ignore[arg-type]
    )
    page = await ctx.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill("admin")
    await page.get_by_label("Password").fill(GOOD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/$"))
    return page


async def test_audit_page_reads_well(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    long = {f"field_{i}": "a rather long value " * 3 for i in range(12)}
    await served.platform.audit.record(
        AuditEvent(
            actor="cli",
            channel=Channel.CLI,
            action="rule.update",
            target="Nurse call escalation",
            details=long,
        )
    )
    page = await signed_in_page(browser, served, timezone_id=ZONE, locale="en-GB")
    await page.goto("/audit")
    await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    # ICU may name the zone by its older alias.
    await expect(page.locator("[data-local-zone]")).to_have_text(re.compile("Kolkata|Calcutta"))

    # Times: the <time> keeps ISO UTC; the text is the viewer's local time.
    row = page.locator("tbody tr", has_text="rule.update")
    stamp = row.locator("time")
    iso = await stamp.get_attribute("datetime")
    assert iso is not None
    local = datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE))
    await expect(stamp).to_contain_text(local.strftime("%H:%M:%S"))
    await expect(stamp).not_to_contain_text("UTC")
    await expect(stamp).to_have_attribute("title", re.compile(r" UTC$"))

    # The details column is on screen, and the long entry keeps its row one line high.
    details = row.locator("td.details")
    await expect(details).to_be_visible()
    await page.screenshot(path=str(artifacts / "audit-local-time.png"), full_page=True)
    await details.scroll_into_view_if_needed()
    await expect(details).to_be_in_viewport(ratio=1)
    box = await details.bounding_box()
    assert box is not None and box["width"] >= 200, box
    assert box["x"] + box["width"] <= LAPTOP["width"], box
    assert (await row.bounding_box() or {"height": 1e9})["height"] <= ROW_HEIGHT
    for other in await page.locator("tbody tr").all():
        assert (await other.bounding_box() or {"height": 1e9})["height"] <= ROW_HEIGHT
    await page.screenshot(path=str(artifacts / "audit-local-time.png"), full_page=True)

    # The whole text is one click away.
    await row.locator("summary").click()
    await expect(details.locator("details")).to_have_attribute("open", "")
    await expect(details).to_contain_text('"field_11": "a rather long value')
    await page.screenshot(path=str(artifacts / "audit-details-open.png"), full_page=True)


async def test_a_delivery_says_who_was_notified(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    ds = served.platform.datasets
    at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    message = await ds.create("MESSAGES", {"uuid": "m-1", "received_at": at, "sent_at": at})
    for name, extra in (
        ("nurse.adams@carewire.test", {"acknowledged": at}),
        ("nurse.baker@carewire.test", {}),
    ):
        who = await ds.create("IDENTITIES", {"name": name})
        values = {"message": message.id, "recipient": who.id, "sent_at": at} | extra
        await ds.create("MESSAGE_DELIVERIES", values)
    delivery = await ds.create(
        "DELIVERIES",
        {"status": "Delivered", "triggered_at": at, "rule": "Nurse call", "message": message.id},
    )
    page = await signed_in_page(browser, served, timezone_id=ZONE, locale="en-GB")
    await page.goto("/deliveries")
    row = page.locator("tbody tr", has_text="Nurse call")
    await expect(row.locator("td.notified")).to_have_text(
        "nurse.adams@carewire.test (Acknowledged), nurse.baker@carewire.test (Sent)"
    )
    await expect(row.locator("time")).to_contain_text("14:30:00")  # 09:00 UTC in +05:30
    await row.get_by_role("link", name=str(delivery.id)).click()
    table = page.get_by_role("table", name="Notified")
    await expect(table).to_be_visible()
    adams = table.get_by_role("row", name=re.compile("nurse.adams"))
    await expect(adams).to_contain_text("Acknowledged")
    await expect(adams.locator("time").first).to_contain_text("14:30:00")
    await page.screenshot(path=str(artifacts / "delivery-notified.png"), full_page=True)
