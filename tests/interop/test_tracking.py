"""Message tracking with real clients: stanza ids, receipts, chat markers, acknowledgements.

slixmpp (xep_0184, xep_0333, xep_0359) and aioxmpp talk through the real
server; the records are read back with ``carewire records list`` on the
server's data directory, as an administrator would.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import slixmpp

from tests.interop.helpers import log_tail
from tests.interop.rawclient import HOST
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = [
    pytest.mark.interop,
    pytest.mark.filterwarnings(
        "ignore:using an available presence state for UseConnected is deprecated:DeprecationWarning"
    ),
]

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0
ACK = "urn:carewire:ack:0"
MARKERS = "urn:xmpp:chat-markers:0"


def _plugins(xmpp: slixmpp.ClientXMPP) -> None:
    for name in ("xep_0184", "xep_0333", "xep_0359"):
        xmpp.register_plugin(name)
    xmpp.plugin["xep_0184"].auto_ack = False  # the tests send receipts themselves


def records(server: RunningServer, dataset: str, *filters: str) -> list[dict[str, Any]]:
    """The values of the records matching ``filters`` (field:op:value)."""
    args = [a for f in filters for a in ("--filter", f)]
    r = server.cli("records", "list", dataset, *args, "--json")
    assert r.returncode == 0, r.stderr
    return [rec["values"] | {"id": rec["id"]} for rec in json.loads(r.stdout)["records"]]


async def eventually(
    server: RunningServer, check: Callable[[], bool], what: str, timeout: float = 15.0
) -> None:
    """Poll ``check`` (in a thread: it runs the CLI) until it holds."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened\n{log_tail(server)}")
        await asyncio.sleep(0.2)


async def pair(server: RunningServer, slix: Slix) -> tuple[SlixClient, SlixClient]:
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, resource="desk", configure=_plugins)
    bob = await slix(server, b_login, b_pw, resource="phone", configure=_plugins)
    alice.xmpp.send_presence()
    bob.xmpp.send_presence()
    await alice.xmpp.get_roster(timeout=TIMEOUT)
    await bob.xmpp.get_roster(timeout=TIMEOUT)
    return alice, bob


def delivery(server: RunningServer, uid: str) -> dict[str, Any] | None:
    msgs = records(server, "MESSAGES", f"uuid:eq:{uid}")
    if not msgs:
        return None
    found = records(server, "MESSAGE_DELIVERIES", f"message:eq:{msgs[0]['id']}")
    return found[0] if found else None


async def test_stanza_id_receipt_and_markers_are_recorded(
    server: RunningServer, slix: Slix
) -> None:
    alice, bob = await pair(server, slix)
    receipts: asyncio.Queue[Any] = asyncio.Queue()
    alice.xmpp.add_event_handler("receipt_received", receipts.put_nowait)
    msg = alice.xmpp.make_message(mto=bob.jid.bare, mbody="bp 120/80", mtype="chat")
    msg["request_receipt"] = True
    msg.enable("markable")
    msg.send()
    got = await bob.next_matching(bob.messages, lambda m: m["body"] == "bp 120/80")
    uid = got["stanza_id"]["id"]
    assert got["stanza_id"]["by"] == bob.jid.bare and len(uid) == 36
    bob.plugin["xep_0184"].ack(got)
    bob.plugin["xep_0333"].send_marker(got["from"], got["id"], "displayed")
    receipt = await alice.next_matching(receipts, lambda m: m["receipt"] == msg["id"])
    assert receipt["from"].bare == bob.jid.bare

    def recorded() -> bool:
        d = delivery(server, uid)
        return d is not None and bool(d["received_at"]) and bool(d["displayed_at"])

    await eventually(server, recorded, "receipt and displayed marker recorded")
    (m,) = records(server, "MESSAGES", f"uuid:eq:{uid}")
    assert m["message"] == "bp 120/80" and m["state"] == "valid"
    assert "urn:xmpp:receipts" in m["elements"]
    first, second = sorted((str(alice.jid.bare), str(bob.jid.bare)))
    (conv,) = records(server, "CONVERSATIONS", f"jid1:eq:{first}", f"jid2:eq:{second}")
    assert conv["id"] == m["conversation"] and conv["activity_state"] == "active"


async def test_acknowledgeable_message_round_trip(server: RunningServer, slix: Slix) -> None:
    alice, bob = await pair(server, slix)
    msg = alice.xmpp.make_message(mto=bob.jid.bare, mbody="confirm transfer?", mtype="chat")
    msg.enable("markable")
    msg.append(ET.Element(f"{{{ACK}}}acknowledgeable"))
    msg.send()
    got = await bob.next_matching(bob.messages, lambda m: m["body"] == "confirm transfer?")
    uid = got["stanza_id"]["id"]
    bob.plugin["xep_0333"].send_marker(alice.jid.bare, got["id"], "acknowledged", mbody="yes")
    ack = await alice.next_matching(alice.messages, lambda m: m["body"] == "yes")
    assert ack["acknowledged"]["id"] == got["id"]

    def acknowledged() -> bool:
        d = delivery(server, uid)
        return d is not None and bool(d["acknowledged"])

    await eventually(server, acknowledged, "acknowledgement recorded")
    (original,) = records(server, "MESSAGES", f"uuid:eq:{uid}")
    assert original["acknowledgeable"] == "t"
    (reply,) = records(server, "MESSAGES", f"acknowledges:eq:{original['id']}")
    assert reply["message"] == "yes"

    # Acknowledging a message that does not exist: an error back, with a text.
    bob.plugin["xep_0333"].send_marker(alice.jid.bare, "no-such-message", "acknowledged")
    err = await bob.next(bob.errors)
    assert err["error"]["condition"] == "item-not-found" and err["error"]["text"]


async def test_aioxmpp_message_gets_a_stanza_id_and_a_record(
    server: RunningServer, slix: Slix
) -> None:
    aioxmpp = importlib.import_module("aioxmpp")
    connector = importlib.import_module("aioxmpp.connector")
    disco = importlib.import_module("aioxmpp.disco")
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    bob = await slix(server, b_login, b_pw, configure=_plugins)
    bob.xmpp.send_presence()
    await bob.xmpp.get_roster(timeout=TIMEOUT)
    client = aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(f"{a_login}@{server.domain}"),
        aioxmpp.make_security_layer(a_pw, no_verify=True),
        override_peer=[(HOST, server.ports["c2s"], connector.STARTTLSConnector())],
    )
    async with asyncio.timeout(TIMEOUT), client.connected() as stream:
        info = await client.summon(disco.DiscoClient).query_info(aioxmpp.JID.fromstr(server.domain))
        assert {"urn:xmpp:sid:0", ACK} <= set(info.features)
        msg = aioxmpp.Message(
            to=aioxmpp.JID.fromstr(f"{b_login}@{server.domain}"), type_=aioxmpp.MessageType.CHAT
        )
        msg.body[None] = "from aioxmpp"
        await stream.send(msg)
        got = await bob.next_matching(bob.messages, lambda m: m["body"] == "from aioxmpp")
    uid = got["stanza_id"]["id"]

    def recorded() -> bool:
        found = records(server, "MESSAGES", f"uuid:eq:{uid}")
        return bool(found) and found[0]["message"] == "from aioxmpp"

    await eventually(server, recorded, "the aioxmpp message recorded")
