"""A device alarm end to end: PCD-04 over MLLP → record → alert at a real client → PCD-05 back.

A whole server runs in the test's process (``Server``, real sockets, the
self-signed certificate it makes, a fake clock started at the real time).
The monitor gateway is the ``hl7`` package's MLLP client, the PCD-05
endpoint its MLLP server, the nurses slixmpp clients over STARTTLS. The rules
are the adapter's example rules: the bed's Primary nurse is alerted, and the
Backup nurse when nobody accepts within the respond-by time, which the test
passes by moving the clock and running the engine's due firings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import pytest
from slixmpp.xmlstream import ET

from carewire.adapters import pcd
from carewire.adapters.pcd.examples import ESCALATION_RULE, example_rules
from carewire.clock import FakeClock
from carewire.config import Config, ServerSection, StorageSection
from carewire.core.accounts import AccountInput
from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.server import Server
from tests.adapters.pcd.conftest import (
    TIMEOUT,
    StatusReceiver,
    exchange,
    msa,
    running,
    sample,
)
from tests.interop.slix import SlixClient, clients
from tests.templates import prefill

pytestmark = pytest.mark.xdist_group("pcd-end-to-end")

DOMAIN = "carewire.test"
ALERT_NS = "urn:carewire:alert:0"
MARKERS = "urn:xmpp:chat-markers:0"
PRIMARY, BACKUP, PASSWORD = "nurse.adams", "nurse.baker", "pw-nurses"
RESPOND_BY = 60


@dataclass(frozen=True)
class Reached:
    """Where the slixmpp clients find the in-process server."""

    domain: str
    ports: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A started server on free loopback ports, without HTTPS, on a prefilled SQLite database."""
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    config = Config(
        data_dir=tmp_path,
        server=ServerSection(domain=DOMAIN, c2s_port=0, c2s_tls_port=0, websocket=False),
        storage=StorageSection(url=url),
    )
    s = Server(config, clock=FakeClock(datetime.now(UTC)))
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


async def _ward(s: Server) -> None:
    """Bed ICU 101 A of Main General, its patient, and the bed's Primary and Backup nurses."""
    a = s.assembly
    assert a is not None
    for login in (PRIMARY, BACKUP):
        await a.accounts.create(AccountInput(login=login, password=PASSWORD))
    facility = {"name": "Main General"}
    room = {"room_number": "101", "facility": facility}
    bed = {"bed_number": "A", "room": room}
    location = {"location_id": "ICU-101A", "facility": facility}
    async with a.datasets.batch(Origin(), "pcd_ward") as b:
        await b.upsert("FACILITIES", facility)
        await b.upsert("ROOMS", room)
        await b.upsert("BEDS", bed)
        await b.upsert("LOCATIONS", {**location, "places": [bed]})
        await b.upsert("PATIENTS", {"mrn": "000123", "last_name": "Moreau", "bed": bed})
        for n, (login, level) in enumerate(((PRIMARY, "Primary"), (BACKUP, "Backup"))):
            await b.upsert("USERS", {"login": login})
            await b.upsert(
                "ASSIGNMENTS",
                {
                    "assignment_id": f"ICU-101A-{n}",
                    "interface_id": "ward",
                    "level": level,
                    "state": "active",
                    "location": location,
                    "usr": {"login": login},
                },
            )
    for rule in example_rules("XMPP", respond_by=RESPOND_BY):
        await a.rules.create(rule)


def _alert_of(msg: Any) -> Any:
    return msg.xml.find(f"{{{ALERT_NS}}}alert")


async def _next_alert(client: SlixClient) -> Any:
    return await client.next_matching(client.messages, lambda m: _alert_of(m) is not None)


def _mark(client: SlixClient, msg: Any, kind: str) -> None:
    """A chat marker (XEP-0333) for the alert, sent into its room as the client would."""
    out = client.xmpp.make_message(mto=msg["from"].bare, mtype="groupchat")
    out.append(ET.Element(f"{{{MARKERS}}}{kind}", {"id": _alert_of(msg).get("id")}))
    out.send()


async def _respond(client: SlixClient, alert: Any, action: str) -> Any:
    iq = client.xmpp.Iq(stype="set", sto=DOMAIN)
    iq.append(ET.Element(f"{{{ALERT_NS}}}response", {"alert": alert.get("id"), "action": action}))
    return await iq.send(timeout=TIMEOUT)  # type: ignore[no-untyped-call]


async def _escalation(s: Server, source: str) -> str:
    """The status of the escalation firing of an alarm record."""
    assert s.assembly is not None
    page = await s.assembly.datasets.query(
        "DELIVERIES",
        Query(filters=(Filter(field="source", op=FilterOp.EQ, value=source),)),
    )
    [found] = [r for r in page.records if r.get("rule") == ESCALATION_RULE]
    return str(found.get("status"))


async def _settled_escalation(s: Server, source: str, timeout: float = 10.0) -> str:
    """The escalation's status once it has left Processing (or whatever it is at ``timeout``)."""
    async with asyncio.timeout(timeout):
        while (status := await _escalation(s, source)) == "Processing":
            await asyncio.sleep(0.02)
    return status


def _statuses(messages: list[hl7.Message]) -> list[tuple[str, str]]:
    """(status, responder) of each PCD-05 received."""
    return [(str(m.segments("OBX")[0](5)), str(m.segments("OBX")[1](5))) for m in messages]


async def test_an_alarm_reaches_the_primary_nurse_and_her_answers_go_back_as_pcd05(
    server: Server, receiver: tuple[StatusReceiver, int]
) -> None:
    a = server.assembly
    assert a is not None
    endpoint, status_port = receiver
    await _ward(server)
    await a.adapters.create(
        pcd.COMPONENT,
        "Monitors",
        is_enabled=True,
        settings={
            "listen_port": 0,
            "default_facility": "Main General",
            "status_host": "127.0.0.1",
            "status_port": status_port,
        },
    )
    monitors = await running(a, "Monitors")
    assert monitors.port is not None
    reach = Reached(domain=DOMAIN, ports=server.ports)
    async with clients() as login:
        nurse = await login(reach, PRIMARY, PASSWORD)
        backup = await login(reach, BACKUP, PASSWORD)
        for client in (nurse, backup):
            client.xmpp.send_presence()  # available: alerts come at once

        # 1. The monitor reports the alarm; the ACK means it is stored.
        reply = await exchange(monitors.port, sample("spo2_low_start"))
        assert msa(reply)[0] == "AA"
        msg = await _next_alert(nurse)
        alert = _alert_of(msg)
        # PM maps to Urgent: the rule's priority is the alarm's (#{alert_priority})
        assert "SpO2 low 85" in msg["body"] and alert.get("priority") == "urgent"

        # 2. Her client shows it, then she accepts: delivered, read, accepted go back.
        _mark(nurse, msg, "received")
        _mark(nurse, msg, "displayed")
        result = await _respond(nurse, alert, "accept")
        assert result["type"] == "result"
        got = _statuses(await endpoint.wait_for(3))
        assert sorted(got) == [
            ("accepted", PRIMARY),
            ("delivered", PRIMARY),
            ("read", PRIMARY),
        ]
        assert all(str(m.segment("OBR")(3)) == "ALM-0001^MONITOR_GW" for m in endpoint.received)

        # 3. The respond-by time passes: the accepted alarm does not escalate.
        clock = a.clock
        assert isinstance(clock, FakeClock)
        await a.engine.drain()
        clock.advance(RESPOND_BY + 1)
        await a.engine.run_due()
        assert await _escalation(server, "DEVICE_ALARMS/1") == "Cancelled"
        # 4. A second alarm nobody accepts reaches the Backup nurse after the respond-by time.
        second = sample("spo2_low_start").replace("ALM-0001", "ALM-0002")
        assert msa(await exchange(monitors.port, second.replace("MSG00001", "MSG00002")))[0] == "AA"
        await _next_alert(nurse)
        assert backup.messages.empty()  # nothing escalated from the first alarm
        await a.engine.drain()  # the escalation is scheduled from now, not from a later time
        clock.advance(RESPOND_BY + 1)
        await a.engine.run_due()
        escalated = await _next_alert(backup)
        assert "Escalated: SpO2 low 85" in escalated["body"]
        # The firing's status is committed just after its alert left: wait for it.
        assert await _settled_escalation(server, "DEVICE_ALARMS/2") == "Delivered"
    async with asyncio.timeout(TIMEOUT):
        await monitors.relay.drain()
