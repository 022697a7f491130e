"""The web console in a real browser: sign-in, errors, inactivity, forgotten password, keyboard.

Screenshots of the sign-in page, the dashboard (laptop and tablet widths)
and the forgotten-password page are saved in ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from carewire.security.console_auth import Role
from tests.e2e.conftest import Served, ServeFactory, skip_without_browser

pytestmark = skip_without_browser()

GOOD = "correct horse battery"
LAPTOP = {"width": 1366, "height": 800}
TABLET = {"width": 820, "height": 1180}


async def new_page(browser: Browser, served: Served, *, javascript: bool = True) -> Page:
    context = await browser.new_context(
        base_url=served.base_url,
        ignore_https_errors=True,
        java_script_enabled=javascript,
        viewport=LAPTOP,  # type: ignore[arg-type]
    )
    return await context.new_page()


async def sign_in(page: Page, login: str, password: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Username or e-mail address").fill(login)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_first_sign_in_with_the_one_time_password(
    serve: ServeFactory, browser: Browser, artifacts: Path
) -> None:
    served = await serve(timedelta(minutes=20))
    password = await served.platform.console.ensure_first_admin("carewire.test")
    assert password is not None
    await served.platform.ensure_default_adapters("carewire.test")
    page = await new_page(browser, served)
    await page.goto("/signin")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.screenshot(path=str(artifacts / "signin.png"), full_page=True)
    await sign_in(page, "admin", password)
    await expect(page).to_have_url(re.compile(r"/account/password$"))
    await expect(page.get_by_text("Choose a new password before you continue")).to_be_visible()
    await page.goto("/")  # no way around it
    await expect(page).to_have_url(re.compile(r"/account/password$"))
    await page.get_by_label("Current password").fill(password)
    await page.get_by_label("New password", exact=True).fill(GOOD)
    await page.get_by_label("Confirm new password").fill(GOOD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Your password has been changed.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("admin")
    await expect(page.get_by_text("System administrator").first).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Adapters", "XMPP settings", "Certificates", "Datasets", "Rules", "Deliveries"):
        await expect(nav.get_by_role("link", name=label)).to_be_visible()
    await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    await page.set_viewport_size(TABLET)  # type: ignore[arg-type]
    await page.screenshot(path=str(artifacts / "dashboard-tablet.png"), full_page=True)
    await nav.get_by_role("link", name="XMPP settings").click()
    await expect(page).to_have_url(re.compile(r"/adapters/XMPP/edit$"))
    await page.goto("/no/such/page")
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/signin$"))
    await sign_in(page, "admin", GOOD)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


async def test_wrong_passwords_are_shown_generically(serve: ServeFactory, browser: Browser) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.console.create_user("nina", Role.ORG_ADMIN, password=GOOD)
    page = await new_page(browser, served)
    messages = []
    for login, password in (("nina", "not her password"), ("nobody", GOOD)):
        await sign_in(page, login, password)
        alert = page.get_by_role("alert")
        await expect(alert).to_have_text("Invalid username or password")
        messages.append(await alert.text_content())
        await expect(page.get_by_label("Password")).to_have_value("")
    assert messages[0] == messages[1]
    await sign_in(page, "nina", GOOD)
    await expect(page.get_by_text("Organisation administrator").first).to_be_visible()


async def test_keyboard_only_sign_in(serve: ServeFactory, browser: Browser) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.console.create_user("kim", Role.AUDITOR, password=GOOD)
    page = await new_page(browser, served)
    await page.goto("/signin")
    # The username field has the focus; Tab moves on to the password, Enter submits.
    await expect(page.get_by_label("Username or e-mail address")).to_be_focused()
    await page.keyboard.type("kim")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(GOOD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await expect(page.get_by_text("can view every section but change nothing")).to_be_visible()
    # The first Tab reaches the skip link, which takes the focus past the navigation.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()


async def test_inactivity_sign_out(serve: ServeFactory, browser: Browser) -> None:
    served = await serve(timedelta(seconds=3))
    await served.platform.console.create_user("ivan", Role.ORG_ADMIN, password=GOOD)
    # Without JavaScript: the server ends the idle session on the next request.
    still = await new_page(browser, served, javascript=False)
    # With JavaScript: the page's timer goes to the sign-out page by itself.
    timed = await new_page(browser, served)
    for page in (still, timed):
        await sign_in(page, "ivan", GOOD)
        await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await asyncio.sleep(3.5)
    await still.goto("/")
    await expect(still).to_have_url(re.compile(r"/signin\?m=inactive$"))
    await expect(still.get_by_role("status")).to_have_text(
        "You were signed out after 3 seconds without activity."
    )
    await expect(timed).to_have_url(re.compile(r"/signout\?reason=inactivity$"), timeout=5000)
    await expect(timed.get_by_role("status")).to_have_text(
        "You were signed out after 3 seconds without activity."
    )
    await timed.goto("/")
    await expect(timed).to_have_url(re.compile(r"/signin$"))


async def read_reset_link(outbox: Path) -> str:
    for _ in range(100):
        mails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if mails:
            msg = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
            m = re.search(r"https://\S+/reset/[A-Za-z0-9_-]+", str(msg.get_payload()))
            assert m, "no link in the mail"
            return m.group(0)
        await asyncio.sleep(0.05)
    raise AssertionError("no mail in the outbox")


async def test_forgot_password(serve: ServeFactory, browser: Browser, artifacts: Path) -> None:
    served = await serve(timedelta(minutes=20))
    await served.platform.console.create_user(
        "olga", Role.ORG_ADMIN, email="olga@h.example", password=GOOD
    )
    page = await new_page(browser, served)
    await page.goto("/signin")
    await page.get_by_role("link", name="Forgot password?").click()
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await page.screenshot(path=str(artifacts / "forgot-password.png"), full_page=True)
    await page.get_by_label("Username or e-mail address").fill("olga@h.example")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("status")).to_have_text(
        "If the account exists, a message has been sent."
    )
    link = await read_reset_link(served.outbox)
    assert link.startswith(served.base_url + "/reset/")
    await page.goto(link)
    new = "a completely new password"
    await page.get_by_label("New password", exact=True).fill(new)
    await page.get_by_label("Confirm new password").fill(new)
    await page.get_by_role("button", name="Set the password").click()
    await expect(page).to_have_url(re.compile(r"/signin\?m=changed$"))
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    await page.goto(link)  # single use
    await expect(
        page.get_by_role("heading", name="This link is not valid any more")
    ).to_be_visible()
    await sign_in(page, "olga", new)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
