"""Clinical presence with a real client: slixmpp registers its device and goes away.

The records are read back with ``carewire records list`` on the server's data
directory, as an administrator would.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from slixmpp.exceptions import IqError

from tests.interop.helpers import log_tail
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

NS_DEVICE = "urn:carewire:device:0"
Slix = Callable[..., Awaitable[SlixClient]]


def records(server: RunningServer, dataset: str, *filters: str) -> list[dict[str, object]]:
    """The values of the records matching ``filters`` (field:op:value)."""
    args = [a for f in filters for a in ("--filter", f)]
    r = server.cli("records", "list", dataset, *args, "--json")
    assert r.returncode == 0, r.stderr
    return [rec["values"] | {"id": rec["id"]} for rec in json.loads(r.stdout)["records"]]


async def wait_for(
    server: RunningServer, check: Callable[[], bool], what: str, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened\n{log_tail(server)}")
        await asyncio.sleep(0.2)


async def send_iq(client: SlixClient, payload: ET.Element) -> None:
    iq: Any = client.xmpp.Iq()  # slixmpp's stanza API is untyped
    iq["type"] = "set"
    iq.append(payload)
    await iq.send(timeout=10)


async def test_a_device_registers_and_goes_away(server: RunningServer, slix: Slix) -> None:
    login, password = server.account()
    client = await slix(server, login, password, resource="ward-phone")
    attrs = {"kind": "mobile", "app-version": "4.1.0", "os-version": "17.2", "uuid": "dev-1"}
    await send_iq(client, ET.Element(f"{{{NS_DEVICE}}}register", attrs))
    client.xmpp.send_presence(pshow="away", pstatus="Charting")

    def away() -> bool:
        found = records(server, "USERS", f"login:eq:{login}")
        return bool(found) and (found[0]["presence_show"], found[0]["presence_status"]) == (
            "away",
            "Charting",
        )

    await wait_for(server, away, "presence_show away")
    (device,) = records(server, "DEVICES", f"name:eq:{login}/ward-phone")
    assert (device["status"], device["vendor"], device["ip_address"]) == (
        "Registered",
        "XMPP",
        "127.0.0.1",
    )
    history = records(server, "REGISTRATION_HISTORY", f"device:eq:{device['id']}")
    assert [(r["device_status"], r["application_version"], r["uuid"]) for r in history] == [
        ("Registered", None, None),
        ("Registered", "4.1.0", "dev-1"),
    ]

    await client.disconnect()

    def offline() -> bool:
        found = records(server, "USERS", f"login:eq:{login}")
        return found[0]["presence_show"] == "offline"

    await wait_for(server, offline, "presence_show offline")
    (device,) = records(server, "DEVICES", f"name:eq:{login}/ward-phone")
    assert device["status"] == "Disconnected"


async def test_a_malformed_registration_is_refused(server: RunningServer, slix: Slix) -> None:
    login, password = server.account()
    client = await slix(server, login, password)
    with pytest.raises(IqError) as failed:
        await send_iq(client, ET.Element(f"{{{NS_DEVICE}}}register", {"kind": "pager"}))
    assert failed.value.condition == "bad-request"
    too_long = {"push-token": "t" * 1025}
    with pytest.raises(IqError) as failed:
        await send_iq(client, ET.Element(f"{{{NS_DEVICE}}}register", too_long))
    assert failed.value.condition == "bad-request"
