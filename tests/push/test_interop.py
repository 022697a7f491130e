"""A real server with push configured, a real slixmpp client over TLS, the local APNs server.

The client registers its token with push.DOMAIN (XEP-0050), enables push
(XEP-0357) and goes offline; a message to it becomes one APNs request at the
fixture, without the message's text.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from tests.interop.slix import TIMEOUT, SlixClient, clients
from tests.push.conftest import APNS_TOKEN, KEY_ID, TEAM_ID, TOPIC, ProviderKeys
from tests.push.pushserver import PushServer
from tests.serverproc import running_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]

COMMANDS = "http://jabber.org/protocol/commands"
PUSH = "urn:xmpp:push:0"
X = "{jabber:x:data}"


async def iq_set(client: SlixClient, payload: str, to: str | None = None) -> ET.Element | None:
    xmpp: Any = client.xmpp
    iq = xmpp.make_iq_set(ito=to)
    iq.xml.append(ET.fromstring(payload))
    reply = await iq.send(timeout=TIMEOUT)
    assert reply["type"] == "result"
    children: list[ET.Element] = list(reply.xml)
    return children[0] if children else None


async def test_offline_message_reaches_the_local_apns_endpoint(
    tmp_path: Path, pushserver: PushServer, provider_keys: ProviderKeys
) -> None:
    env = {
        "CAREWIRE_PUSH_ENABLED": "true",
        "CAREWIRE_PUSH_APNS": "true",
        "CAREWIRE_PUSH_APNS_ENDPOINT": pushserver.url,
        "CAREWIRE_PUSH_APNS_TOPIC": TOPIC,
        "CAREWIRE_PUSH_APNS_AUTH": "token",
        "CAREWIRE_PUSH_APNS_KEY_FILE": str(provider_keys.apns_key_file),
        "CAREWIRE_PUSH_APNS_KEY_ID": KEY_ID,
        "CAREWIRE_PUSH_APNS_TEAM_ID": TEAM_ID,
        "CAREWIRE_PUSH_CA_FILE": str(pushserver.cert_file),
    }
    # The server starts in a subprocess; the fixture server keeps running in this loop.
    manager = running_server(tmp_path / "data", accounts=2, env=env)
    server = await asyncio.to_thread(manager.__enter__)
    try:
        async with clients() as slix:
            nurse, nurse_pw = server.account()
            doctor, doctor_pw = server.account()
            phone = await slix(server, nurse, nurse_pw, resource="phone")
            command = await iq_set(
                phone,
                f"<command xmlns='{COMMANDS}' node='register-push-apns' action='execute'>"
                f"<x xmlns='jabber:x:data' type='submit'><field var='token'>"
                f"<value>{APNS_TOKEN}</value></field></x></command>",
                to=f"push.{server.domain}",
            )
            assert command is not None
            fields = {f.get("var"): f.findtext(f"{X}value") for f in command.iter(f"{X}field")}
            await iq_set(
                phone,
                f"<enable xmlns='{PUSH}' jid='{fields['jid']}' node='{fields['node']}'>"
                "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                f"<field var='secret'><value>{fields['secret']}</value></field></x></enable>",
            )
            await phone.disconnect()
            sender = await slix(server, doctor, doctor_pw)
            sender.xmpp.send_message(
                mto=slixmpp.JID(server.jid(nurse)),
                mbody="Bed 4 Jane Roe needs review",
                mtype="chat",
            )
            (request,) = await pushserver.wait_for(1, timeout=15)
            log = server.log()
        assert request.path == f"/3/device/{APNS_TOKEN}"
        assert request.headers["apns-topic"] == TOPIC
        assert b"Jane" not in request.body and nurse.encode() not in request.body
        assert request.json()["carewire"]["count"] == 1  # type: ignore[index]
        assert APNS_TOKEN not in log and str(fields["secret"]) not in log  # never logged
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
