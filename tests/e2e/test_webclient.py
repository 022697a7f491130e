"""The clinicians' web client at /app, in headless Chromium, against a whole server with the demo.

One server and one browser for the module (tests/e2e/webclient_world.py);
each test signs in clinicians of its own, so the order does not matter except
for the last one, which moves the server's clock half an hour on.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from carewire.directory.model import SYSTEM_CALLER, MessageExpiration, OrganisationUpdate
from carewire.features.expiry import Expirer, OrganisationLifetimes
from tests.e2e.conftest import headless_chromium, skip_without_browser
from tests.e2e.webclient_world import (
    BACKUP_RULE,
    NURSE,
    World,
    axe_violations,
    demo_world,
    new_context,
    raise_nurse_call,
    sign_in,
)

pytestmark = [
    skip_without_browser(),
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="module"),
]

WAIT = 15_000  # ms: the longest a browser-side expectation waits


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with (
        headless_chromium() as browser,
        demo_world(tmp_path_factory.mktemp("webclient"), browser) as w,
    ):
        yield w


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def _open_by_search(page: Page, last_name: str) -> None:
    """Find a colleague in the directory and open the conversation (keyboard and labels only)."""
    await page.keyboard.press("Alt+4")
    await page.get_by_label("Search the directory").fill(last_name)
    await page.keyboard.press("Enter")
    await page.locator("#search-results button", has_text=last_name).click()
    await expect(page.locator("#conversation")).to_be_visible()


async def _send(page: Page, text: str, *, ackable: bool = False) -> None:
    if ackable:
        await page.get_by_label("Ask for acknowledgement").check()
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send").click()


async def _open_conversation(page: Page, jid: str) -> None:
    await page.keyboard.press("Alt+2")
    await page.locator(f"#conversations button[data-jid='{jid}']").click()


def _jid(login: str) -> str:
    return f"{login}@carewire.test"


async def test_two_clinicians_chat_both_ways_and_see_delivery_states(world: World) -> None:
    chen = await sign_in(world, "dr.chen")
    diaz = await sign_in(world, "dr.diaz")
    await _open_by_search(chen, "Diaz")
    await _send(chen, "Please review bed 101A", ackable=True)
    sent = chen.locator("#messages li.out", has_text="Please review bed 101A")
    state = sent.locator(f".state[data-recipient='{_jid('dr.diaz')}']")
    # Diaz is online but has not opened it: the receipt says received.
    await expect(state).to_have_attribute("data-state", "received", timeout=WAIT)
    await expect(diaz.locator("#unread-count")).to_have_text("1", timeout=WAIT)

    await _open_conversation(diaz, _jid("dr.chen"))
    got = diaz.locator("#messages li.in", has_text="Please review bed 101A")
    await expect(got).to_be_visible()
    await expect(state).to_have_attribute("data-state", "displayed", timeout=WAIT)
    await got.get_by_role("button", name="Acknowledge").click()
    await expect(state).to_have_attribute("data-state", "acknowledged", timeout=WAIT)

    await _send(diaz, "Reviewed, all fine")
    await expect(chen.locator("#messages li.in", has_text="Reviewed, all fine")).to_be_visible(
        timeout=WAIT
    )
    await chen.context.close()
    await diaz.context.close()


async def test_a_message_sent_while_offline_arrives_at_sign_in(world: World) -> None:
    garcia = await sign_in(world, "dr.garcia")
    await _open_by_search(garcia, "Hughes")
    await _send(garcia, "Call me when you are in")
    out = garcia.locator("#messages li.out", has_text="Call me when you are in")
    await expect(out.locator(".states")).to_contain_text("sent")

    hughes = await sign_in(world, "dr.hughes")
    await expect(hughes.locator("#unread-count")).to_have_text("1", timeout=WAIT)
    await _open_conversation(hughes, _jid("dr.garcia"))
    await expect(
        hughes.locator("#messages li.in", has_text="Call me when you are in")
    ).to_be_visible()
    await garcia.context.close()
    await hughes.context.close()


async def _delivery_status(api: httpx.AsyncClient, rule: str) -> list[str]:
    r = await api.get("/deliveries", params={"limit": 100})
    assert r.status_code == 200, r.text
    return [
        str(d["values"]["status"])
        for d in r.json()["deliveries"]
        if d["values"].get("rule") == rule
    ]


async def test_an_alert_from_the_api_counts_down_and_accept_cancels_the_escalation(
    world: World,
) -> None:
    nurse = await sign_in(world, NURSE)
    await raise_nurse_call(world.api, "webclient-1")
    alert = nurse.locator("#alerts li.alert").first
    await expect(alert).to_be_visible(timeout=WAIT)
    await expect(alert).to_have_attribute("data-priority", "important")
    await expect(alert).to_contain_text("Patient: MRN")
    await expect(alert.locator(".countdown")).to_have_text(re.compile(r"^\d+:\d\d"))
    await expect(nurse.locator("#alert-count")).to_have_text("1")
    assert await axe_violations(nurse) == []

    await alert.get_by_role("button", name="Accept", exact=True).click()
    await expect(alert.locator(".outcome")).to_have_text("You accepted.", timeout=WAIT)
    await expect(alert.get_by_role("button", name="Accept", exact=True)).to_be_disabled()

    r = await world.api.get("/datasets/NURSE_CALLS/records", params={"limit": 100})
    [call] = [x for x in r.json()["records"] if x["values"]["call_id"] == "webclient-1"]
    assert call["values"]["status"] == "Accepted"
    assert call["values"]["responder"] == NURSE
    # The escalation (the backup nurse, a minute later) comes due and is cancelled, not sent.
    assert world.server.assembly is not None
    world.clock.advance(121)
    await world.server.assembly.engine.run_due()

    async def cancelled() -> bool:
        return "Cancelled" in await _delivery_status(world.api, BACKUP_RULE)

    await _eventually(cancelled)
    assert "Delivered" not in await _delivery_status(world.api, BACKUP_RULE)
    await nurse.context.close()


async def test_the_pages_pass_axe_core(world: World) -> None:
    context = await world.browser.new_context(ignore_https_errors=True)
    page = await context.new_page()
    await page.goto(f"{world.base_url}/app")  # the redirect to /app/
    await expect(page.get_by_role("heading", name="Carewire sign-in")).to_be_visible()
    assert await axe_violations(page) == []
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Enter your user name and password.")
    await page.close()

    ito = await sign_in(world, "nurse.ito", context)
    await _open_by_search(ito, "Jones")
    await _send(ito, "Checking in")
    for tab in ("Alt+1", "Alt+3", "Alt+2"):
        await ito.keyboard.press(tab)
        if tab == "Alt+2":  # the Groups and rooms list is rendered when the page is checked
            await expect(ito.locator("#places button[data-kind='group']").first).to_be_visible(
                timeout=WAIT
            )
        assert await axe_violations(ito) == [], tab
    await context.close()


async def test_a_clinician_messages_their_group_from_the_groups_and_rooms_list(
    world: World,
) -> None:
    diaz = await sign_in(world, "dr.diaz")
    tablet = await world.browser.new_context(
        ignore_https_errors=True, viewport={"width": 768, "height": 1024}
    )
    baker = await sign_in(world, "nurse.baker", tablet)
    await baker.keyboard.press("Alt+2")
    places = baker.get_by_role("list", name="Groups and rooms")
    # Their own unit comes first; the hospital's other units (open to all its staff) follow.
    icu = places.get_by_role("button", name="ICU (my group)")
    await expect(icu).to_be_visible(timeout=WAIT)
    await expect(places.get_by_role("button", name="Emergency (group)")).to_be_visible()
    await expect(places.locator("button").first).to_have_text("ICU (my group)")
    group = await icu.get_attribute("data-jid")
    assert group is not None and group.endswith("@groups.carewire.test")
    await icu.focus()  # keyboard only: Enter opens it
    await baker.keyboard.press("Enter")
    await expect(baker.locator("#conversation-title")).to_have_text("ICU")
    await expect(baker.get_by_label("Message", exact=True)).to_be_focused()
    await _send(baker, "Rounds at nine")

    await expect(diaz.locator("#unread-count")).to_have_text("1", timeout=WAIT)
    await _open_conversation(diaz, group)
    await expect(diaz.locator("#messages li.in", has_text="Rounds at nine")).to_be_visible()
    await baker.context.close()
    await diaz.context.close()


async def _open_by_address(page: Page, jid: str) -> None:
    await page.keyboard.press("Alt+2")
    await page.get_by_label("Open a conversation or room by address").fill(jid)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Joined "), timeout=WAIT)


async def test_two_clinicians_talk_in_a_room_kept_in_the_list(world: World) -> None:
    room = "huddle-web@chat.carewire.test"
    garcia = await sign_in(world, "dr.garcia")
    await _open_by_address(garcia, room)  # garcia creates it (an instant room)
    in_list = garcia.locator(f"#places button[data-kind='room'][data-jid='{room}']")
    await expect(in_list).to_have_text("huddle-web (room)")
    hughes = await sign_in(world, "dr.hughes")
    await _open_by_address(hughes, room)

    await _send(garcia, "Huddle at noon")
    await expect(hughes.locator("#messages li.in", has_text="Huddle at noon")).to_be_visible(
        timeout=WAIT
    )
    await _send(hughes, "On my way")
    await expect(garcia.locator("#messages li.in", has_text="On my way")).to_be_visible(
        timeout=WAIT
    )
    # The room was bookmarked (XEP-0402): at the next sign-in it is in the list.
    await garcia.context.close()
    garcia = await sign_in(world, "dr.garcia")
    await garcia.keyboard.press("Alt+2")
    await (
        garcia.get_by_role("list", name="Groups and rooms")
        .get_by_role("button", name="huddle-web (room)")
        .click()
    )
    await expect(garcia.locator("#messages li", has_text="On my way")).to_be_visible(timeout=WAIT)
    await _send(garcia, "Back again")
    await expect(hughes.locator("#messages li.in", has_text="Back again")).to_be_visible(
        timeout=WAIT
    )
    await garcia.context.close()
    await hughes.context.close()


async def test_service_worker_is_allowed_the_whole_client(world: World) -> None:
    async with httpx.AsyncClient(verify=False, base_url=world.base_url) as http:
        page = await http.get("/app/")
        config = await http.get("/app/config.json")
        worker = await http.get("/app/push/sw.js")
        licence = await http.get("/app/vendor/strophe.js.LICENSE.txt")
    assert page.status_code == 200 and "Carewire sign-in" in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert config.json() == {"domain": "carewire.test", "websocket_path": "/xmpp-websocket"}
    assert licence.status_code == 200 and "Permission is hereby granted" in licence.text
    # The Web Push files are installed separately; when they are, the worker may claim /app/.
    assert worker.status_code in (200, 404)
    if worker.status_code == 200:
        assert worker.headers["service-worker-allowed"] == "/app/"


async def test_presence_states_reach_colleagues(world: World) -> None:
    evans = await sign_in(world, "nurse.evans")
    foster = await sign_in(world, "nurse.foster")
    await foster.keyboard.press("Alt+3")
    row = foster.locator("#contacts li", has=foster.locator(f"[data-jid='{_jid('nurse.evans')}']"))
    await expect(row.locator(".presence")).to_have_text("Available", timeout=WAIT)
    for choice in ("Busy", "Not Available", "Available"):
        await evans.get_by_label("My status").select_option(label=choice)
        await expect(row.locator(".presence")).to_have_text(choice, timeout=WAIT)
    # Web Push is installed apart from the client: without it the toggle says so.
    await evans.get_by_label("Notify me when this tab is closed").check()
    await expect(evans.get_by_role("status")).to_have_text(
        re.compile("^Notifications (are on|for a closed tab are not available)"), timeout=WAIT
    )
    await evans.context.close()
    await expect(row.locator(".presence")).to_have_text("Offline", timeout=WAIT)
    await foster.context.close()


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2a1f6f10000000049454e44ae426082"
)


async def test_a_shared_image_is_previewed_on_both_sides(world: World) -> None:
    jones = await sign_in(world, "nurse.jones")
    ito = await sign_in(world, "nurse.ito")
    await _open_by_search(jones, "Ito")
    await jones.get_by_label("Attach a file").set_input_files(
        {"name": "wound.png", "mimeType": "image/png", "buffer": PNG}
    )
    await _send(jones, "Wound photo")
    mine = jones.locator("#messages li.out", has_text="Wound photo")
    await expect(mine.get_by_role("img", name="Shared image wound.png")).to_be_visible(timeout=WAIT)
    await _open_conversation(ito, _jid("nurse.jones"))
    image = ito.locator("#messages li.in").get_by_role("img", name="Shared image wound.png")
    await expect(image).to_be_visible(timeout=WAIT)
    assert await image.evaluate("(img) => img.complete && img.naturalWidth") == 1
    await jones.context.close()
    await ito.context.close()


async def test_a_wrong_password_is_refused_with_a_clear_message(world: World) -> None:
    context = await new_context(world)
    page = await context.new_page()
    await page.goto(f"{world.base_url}/app/")
    await page.get_by_label("User name").fill("dr.chen")
    await page.get_by_label("Password").fill("not the password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text(
        "The user name or password is not correct, or the account is locked.", timeout=WAIT
    )
    await expect(page.get_by_label("Password")).to_be_focused()
    # The Web Push adapter refuses what is not an IQ, with a clear error.
    refused = await page.evaluate(
        """async () => {
            const {Xmpp} = await import('/app/js/xmpp.js');
            return new Xmpp('carewire.test', 'wss://unused').sendIqString('<message/>')
              .then(() => 'sent', (err) => err.message);
        }"""
    )
    assert refused == "not an IQ stanza"
    await context.close()


async def test_the_session_timeout_signs_an_idle_clinician_out(world: World) -> None:
    a = world.server.assembly
    assert a is not None
    [xmpp] = [x for x in a.adapters.list() if x.component == "XMPP"]
    before = dict(xmpp.settings)
    await a.adapters.update(
        xmpp.reference_name, settings={**before, "desktop_session_timeout": "15 minutes"}
    )
    try:
        context = await new_context(world)
        page = await context.new_page()
        await page.clock.install()
        chen = await sign_in(world, "dr.chen", context, page=page)
        await chen.clock.fast_forward("14:00")
        await chen.keyboard.press("Alt+2")  # activity: the 15 minutes start again
        await chen.clock.fast_forward("14:00")
        await expect(chen.locator("#app-view")).to_be_visible()
        await chen.clock.fast_forward("02:00")
        await expect(chen.get_by_role("alert")).to_have_text(
            "Signed out after 15 minutes without activity.", timeout=WAIT
        )
        await expect(chen.get_by_label("User name")).to_be_visible()
        await context.close()
    finally:
        await a.adapters.update(xmpp.reference_name, settings=before)


async def test_an_expired_message_leaves_both_screens(world: World) -> None:
    """Last: the organisation's expiration becomes 30 minutes and the clock moves 31 on."""
    a = world.server.assembly
    assert a is not None
    orgs = a.directory.organisations
    [org] = [o for o in await orgs.list_visible(SYSTEM_CALLER) if o.kind == "hospital"]
    settings = replace(org.settings, message_expiration=MessageExpiration.MINUTES_30)
    await orgs.update(SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings))
    await a.kernel.ctx.require(OrganisationLifetimes).refresh()

    khan = await sign_in(world, "dr.khan")
    lee = await sign_in(world, "charge.lee")
    await _open_by_search(khan, "Lee")
    await _send(khan, "Short-lived note")
    await expect(lee.locator("#unread-count")).to_have_text("1", timeout=WAIT)
    await _open_conversation(lee, _jid("dr.khan"))
    got = lee.locator("#messages li.in", has_text="Short-lived note")
    await expect(got).to_be_visible()

    world.clock.advance(31 * 60)
    a.kernel.ctx.require(Expirer).poke()
    await expect(got).to_have_count(0, timeout=WAIT)
    await expect(khan.locator("#messages li", has_text="Short-lived note")).to_have_count(
        0, timeout=WAIT
    )
    await khan.context.close()
    await lee.context.close()
