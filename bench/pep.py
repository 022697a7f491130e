"""``python -m bench.pep``: PEP publish fan-out, item reads and last-item delivery, in process.

The kernel is opened as the server opens it (SQLite in a temporary directory,
or ``--database-url``), with the standard XMPP features. One clinician
(``pub``) has ``--contacts`` contacts with mutual presence subscriptions, each
online with one resource that ``+notify`` the avatar metadata node (set
directly: the capability look-up is measured by the tests, not here).
Measured, in order:

- **publish**: ``--publishes`` metadata items published by ``pub`` through the
  IQ path (the IQ routed as a client sends it), each notified to every
  contact: publishes/s, notifications/s, p50/p99 ms per publish (store +
  fan-out), CPU µs per notification;
- **read**: ``--reads`` ``items`` requests from contacts for the node
  (presence access model checked against the roster): p50/p99 ms;
- **login**: a contact's new resource becomes available and receives the last
  item of each of its contacts' nodes (one query): p50/p99 ms for
  ``--logins`` logins.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from xml.etree.ElementTree import Element

from bench.stats import self_cpu_seconds, summary_ms
from carewire.assembly import Core, Options, open_core
from carewire.clock import SystemClock
from carewire.core.accounts import AccountInput
from carewire.core.kernel import IM_FEATURES
from carewire.core.sessions import Session, SessionManager
from carewire.core.stores import RosterItem, Subscription
from carewire.features.pep import PepService
from carewire.features.pep.notify import NOTIFY_KEY
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document

DOMAIN = "bench.carewire.localhost"
META = "urn:xmpp:avatar:metadata"


class CountingSink:
    """Counts what a session would have been sent."""

    def __init__(self) -> None:
        self.count = 0

    def send_element(self, element: Element) -> None:
        self.count += 1

    def close(self, condition: object = None, text: str = "") -> None:
        pass


def _publish_iq(n: int) -> Element:
    return parse_document(
        "<iq xmlns='jabber:client' type='set' id='p'>"
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
        f"<publish node='{META}'><item id='{n:040x}'><metadata xmlns='{META}'>"
        f"<info id='{n:040x}' bytes='4096' type='image/png'/></metadata></item></publish>"
        "</pubsub></iq>"
    )


def _online(sessions: SessionManager, login: str, resource: str) -> tuple[Session, CountingSink]:
    sink = CountingSink()
    session = Session(jid=JID.parse(f"{login}@{DOMAIN}/{resource}"), sink=sink)
    session.presence = Element("{jabber:client}presence")
    session.data[NOTIFY_KEY] = frozenset({META})
    sessions.add(session)
    return session, sink


async def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        core = await open_core(
            Options(url=url, domain=DOMAIN, clock=SystemClock(), scram_iterations=4096)
        )
        try:
            core.load_features(IM_FEATURES)
            return await _measure(core, args)
        finally:
            await core.close()


async def _measure(core: Core, args: argparse.Namespace) -> dict[str, object]:
    kernel = core.kernel
    stores = kernel.stores
    logins = ["pub", *(f"c{i:05d}" for i in range(args.contacts))]
    for login in logins:
        await kernel.accounts.create(AccountInput(login=login, password="bench-password-1"))
    for contact in logins[1:]:
        await stores.roster.set_item(
            "pub", RosterItem(contact=f"{contact}@{DOMAIN}", subscription=Subscription.BOTH)
        )
        await stores.roster.set_item(
            contact, RosterItem(contact=f"pub@{DOMAIN}", subscription=Subscription.BOTH)
        )
    pub, _ = _online(kernel.sessions, "pub", "phone")
    sinks = [_online(kernel.sessions, c, "phone")[1] for c in logins[1:]]
    router = kernel.router

    latencies: list[float] = []
    cpu0, t0 = self_cpu_seconds(), time.perf_counter()
    for n in range(args.publishes):
        s = time.perf_counter()
        await router.route_from_session(pub, _publish_iq(n))
        latencies.append(time.perf_counter() - s)
    wall, cpu = time.perf_counter() - t0, self_cpu_seconds() - cpu0
    notified = sum(s.count for s in sinks)
    publish = {
        "publishes_per_s": round(args.publishes / wall, 1),
        "notifications_per_s": round(notified / wall, 1),
        "notifications": notified,
        "cpu_us_per_notification": round(cpu / max(notified, 1) * 1e6, 1),
        "latency_ms": summary_ms(latencies),
    }

    service = kernel.ctx.require(PepService)
    reads: list[float] = []
    for i in range(args.reads):
        requester = JID.parse(f"{logins[1 + i % args.contacts]}@{DOMAIN}/phone")
        s = time.perf_counter()
        await service.read(requester, "pub", META, max_items=1)
        reads.append(time.perf_counter() - s)

    logins_ms: list[float] = []
    for i in range(args.logins):
        session, sink = _online(kernel.sessions, logins[1 + i % args.contacts], f"new{i}")
        s = time.perf_counter()
        await service.notifier.send_last_items(session, frozenset({META}))
        logins_ms.append(time.perf_counter() - s)
        assert sink.count == 1
    await asyncio.sleep(0)
    return {
        "contacts": args.contacts,
        "publish": publish,
        "read_ms": summary_ms(reads),
        "last_item_login_ms": summary_ms(logins_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pep", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--publishes", type=int, default=300)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
