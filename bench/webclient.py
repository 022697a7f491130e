"""``python -m bench.webclient``: the clinicians' web client in headless Chromium, on loopback.

The server runs in this process with the demo hospital (the browser tests'
world, ``tests/e2e/webclient_world.py``); one Chromium holds every page.
Three figures:

1. **first load**: a fresh browser profile opens ``/app/``, signs in and is
   usable (the settings read, presence sent): the bytes transferred (HTTP
   bodies and headers as the network saw them, plus the XMPP WebSocket
   frames) and the milliseconds from navigation to the sign-in form and to
   usable;
2. **history**: 500 messages (sent by a slixmpp client beforehand) read from
   the archive in pages of 100 and rendered: the archive round trips and the
   rendering alone, in milliseconds;
3. **alert → visible**: ``--sessions`` pages (50) each signed in as a
   clinician of their own; a rule alerts all of them at once; each round a
   record is written over REST and the time until each page shows the alert
   is taken (``--rounds`` rounds): p50, p99, max.

Bounded: every wait has a timeout, and no alert round after the first starts
once the rounds have run ``--budget`` seconds (60).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page
from slixmpp import JID
from tests.e2e.conftest import headless_chromium
from tests.e2e.webclient_world import DOMAIN, World, demo_world, new_context, sign_in
from tests.interop.slix import clients

from carewire.directory.model import SYSTEM_CALLER, NewUser, Profile
from carewire.features.tracking import MessageTracker
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule

HISTORY = 500
PASSWORD = "bench-webclient-pw"


async def first_load(world: World) -> dict[str, float]:
    """Bytes and milliseconds of a first visit, from navigation to usable."""
    context = await new_context(world)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    seen = {"http": 0.0, "ws": 0.0}

    def loaded(event: dict[str, Any]) -> None:
        seen["http"] += float(event.get("encodedDataLength", 0))

    def frame(event: dict[str, Any]) -> None:
        seen["ws"] += len(event.get("response", {}).get("payloadData", "").encode())

    cdp.on("Network.loadingFinished", loaded)
    cdp.on("Network.webSocketFrameReceived", frame)
    cdp.on("Network.webSocketFrameSent", frame)
    started = time.perf_counter()
    await page.goto(f"{world.base_url}/app/")
    await page.get_by_label("User name").wait_for()
    form_ms = (time.perf_counter() - started) * 1000
    await page.get_by_label("User name").fill("dr.chen")
    await page.get_by_label("Password").fill(world.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator("body[data-ready='true']").wait_for(state="attached", timeout=15_000)
    usable_ms = (time.perf_counter() - started) * 1000
    await context.close()
    return {
        "http_bytes": seen["http"],
        "ws_bytes": seen["ws"],
        "form_ms": form_ms,
        "usable_ms": usable_ms,
    }


async def history(world: World) -> dict[str, float]:
    """500 messages from dr.diaz to dr.chen, then dr.chen opens the conversation."""
    assert world.server.assembly is not None

    class Reached:
        domain = DOMAIN
        ports = world.server.ports

    # dr.chen is online while they arrive (else they would come from offline storage at sign-in)
    online = await sign_in(world, "dr.chen")
    async with clients() as make:
        diaz = await make(Reached(), "dr.diaz", world.password)
        for n in range(HISTORY):
            diaz.xmpp.send_message(mto=JID(f"dr.chen@{DOMAIN}"), mbody=f"history {n}", mtype="chat")
        await diaz.xmpp.get_roster(timeout=30)  # answered after every message before it
    await world.server.assembly.kernel.ctx.require(MessageTracker).flush()
    await online.locator("#unread-count").filter(has_text=str(HISTORY)).wait_for(timeout=30_000)
    await online.context.close()
    page = await sign_in(world, "dr.chen")  # a fresh browser: the conversation from the archive
    await page.keyboard.press("Alt+3")
    await page.locator(f"#contacts button[data-jid='dr.diaz@{DOMAIN}']").click()
    await page.wait_for_function(
        f"window.carewireStats.render && window.carewireStats.render.count >= {HISTORY}",
        timeout=30_000,
    )
    stats = await page.evaluate("({h: carewireStats.history, r: carewireStats.render})")
    await page.context.close()
    return {
        "messages": float(stats["r"]["count"]),
        "archive_ms": float(stats["h"]["ms"]),
        "render_ms": float(stats["r"]["ms"]),
    }


async def _clinicians(world: World, count: int) -> list[str]:
    a = world.server.assembly
    assert a is not None
    [org] = await a.directory.organisations.list_visible(SYSTEM_CALLER)
    logins = [f"bench.{n:02d}" for n in range(count)]
    for login in logins:
        await a.directory.users.create(
            SYSTEM_CALLER,
            org.id,
            NewUser(
                profile=Profile(first_name="Bench", last_name=login, email=f"{login}@bench.test"),
                login=login,
                password=PASSWORD,
                pin="2580",
                send_invitation=False,
            ),
        )
    await a.rules.create(
        Rule(
            name="bench-fanout",
            purpose="benchmark: one alert to every bench clinician",
            dataset="NURSE_CALLS",
            adapter=next(x.reference_name for x in a.adapters.list() if x.component == "XMPP"),
            action="Send Alert",
            conditions=Group(
                mode=Mode.ALL, items=(Condition(path="status", op=Op.EQUALS, value="Bench"),)
            ),
            settings={
                "recipients": "\n".join(logins),
                "subject": "Bench #{call_id}",
                "message": "benchmark alert",
                "ttl": 10,
                # Important, not Urgent: an urgent alert sounds for 30 s, and 50 pages each making
                # a tone on two shared cores would measure the sound, not the delivery.
                "priority": "Important",
                "accept": "status=Accepted",
            },
        )
    )
    return logins


async def _bench_page(world: World, login: str) -> Page:
    context = await new_context(world)
    page = await context.new_page()
    await page.goto(f"{world.base_url}/app/")
    await page.get_by_label("User name").fill(login)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator("body[data-ready='true']").wait_for(state="attached", timeout=30_000)
    return page


async def alert_latency(
    world: World, *, sessions: int, rounds: int, budget: float
) -> dict[str, float]:
    """Alert raised over REST → shown in every page, over ``rounds`` rounds."""
    logins = await _clinicians(world, sessions)
    started = time.monotonic()
    pages: list[Page] = []
    for chunk in range(0, sessions, 10):  # ten sign-ins at a time
        pages += await asyncio.gather(*(_bench_page(world, x) for x in logins[chunk : chunk + 10]))
    signed_in = time.monotonic() - started
    samples: list[float] = []
    deadline = time.monotonic() + budget
    for n in range(rounds):
        if n and time.monotonic() > deadline:
            break
        raised = time.time() * 1000
        r = await world.api.post(
            "/datasets/NURSE_CALLS/records",
            json={"values": {"call_id": f"bench-{n}", "status": "Bench"}},
        )
        assert r.status_code == 201, r.text
        shown = await asyncio.gather(
            *(
                p.wait_for_function(
                    f"Object.keys(carewireStats.alerts).length >= {n + 1}", timeout=30_000
                )
                for p in pages
            )
        )
        for handle in shown:
            await handle.dispose()
        times = await asyncio.gather(
            *(p.evaluate("Math.max(...Object.values(carewireStats.alerts))") for p in pages)
        )
        samples += [t - raised for t in times]
    for p in pages:
        await p.context.close()
    ordered = sorted(samples)
    return {
        "sign_in_s": signed_in,
        "sessions": float(sessions),
        "samples": float(len(samples)),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="carewire-bench-webclient-") as tmp:
        # the server keeps its keys and audit checkpoints beside the data directory
        for sibling in ("-keys", "-audit"):
            stack_dir = Path(tmp + sibling)
            atexit.register(shutil.rmtree, stack_dir, ignore_errors=True)
        async with contextlib.AsyncExitStack() as stack:
            browser: Browser = await stack.enter_async_context(headless_chromium())
            world = await stack.enter_async_context(demo_world(Path(tmp), browser))
            load = await first_load(world)
            print(
                f"first load: {load['http_bytes'] / 1024:.1f} KiB HTTP + "
                f"{load['ws_bytes'] / 1024:.1f} KiB XMPP; sign-in form after "
                f"{load['form_ms']:.0f} ms, usable {load['usable_ms']:.0f} ms after navigation"
            )
            hist = await history(world)
            print(
                f"history: {hist['messages']:.0f} messages, archive {hist['archive_ms']:.0f} ms, "
                f"rendering {hist['render_ms']:.0f} ms"
            )
            lat = await alert_latency(
                world, sessions=args.sessions, rounds=args.rounds, budget=args.budget
            )
            print(
                f"alert raised -> visible, {lat['sessions']:.0f} sessions, {lat['samples']:.0f} "
                f"samples: p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
                f"max {lat['max_ms']:.0f} ms (the {lat['sessions']:.0f} sign-ins took "
                f"{lat['sign_in_s']:.0f} s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sessions", type=int, default=50, help="browser pages (clinicians)")
    parser.add_argument("--rounds", type=int, default=10, help="alerts raised, one at a time")
    parser.add_argument(
        "--budget", type=float, default=60, help="seconds of alert rounds (the first always runs)"
    )
    args = parser.parse_args()
    if not 1 <= args.sessions <= 200 or not 1 <= args.rounds <= 100:
        parser.error("--sessions is 1 to 200 and --rounds 1 to 100")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
