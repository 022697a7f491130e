"""A real server with Web Push on, a real slixmpp client over TLS, the local push service.

The client does what the web client does: asks its account for the VAPID
key, has its "browser" subscribe (bad subscriptions first: clear errors),
hands the subscription over and goes offline. An alert raised through the
REST API (a dataset record that a Send Alert rule turns into an alert) then
reaches the push service as one encrypted push with ``Urgency: high``,
signed with the key the client was given, which the browser's keys decrypt
to a payload without the alert's text.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slixmpp.exceptions import IqError

from tests.interop.slix import TIMEOUT, SlixClient, clients
from tests.push.webpushserver import Browser, WebPushServer, unb64url
from tests.serverproc import RunningServer, running_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]

NS = "urn:carewire:webpush:0"
DATASET = "WEBPUSH_CALLS"


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[WebPushServer]:
    server = WebPushServer(folder=tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def ask(client: SlixClient, iq_type: str, payload: str) -> ET.Element | None:
    xmpp: Any = client.xmpp
    iq = xmpp.make_iq_get() if iq_type == "get" else xmpp.make_iq_set()
    iq.xml.append(ET.fromstring(payload))
    reply = await iq.send(timeout=TIMEOUT)
    children: list[ET.Element] = list(reply.xml)
    return children[0] if children else None


async def refused(client: SlixClient, payload: str) -> tuple[str, str]:
    with pytest.raises(IqError) as caught:
        await ask(client, "set", payload)
    error: Any = caught.value.iq["error"]
    return str(error["condition"]), str(error["text"])


def subscribe(endpoint: str, p256dh: str, auth: str) -> str:
    return f"<subscribe xmlns='{NS}' endpoint='{endpoint}' p256dh='{p256dh}' auth='{auth}'/>"


async def raise_alert(server: RunningServer, login: str) -> None:
    """A Send Alert rule on a dataset of calls, and a call naming ``login`` (REST API)."""
    token = server.cli("token", "create", f"webpush-{time.monotonic_ns()}", "--role", "admin")
    assert token.returncode == 0, token.stderr
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
    ) as api:
        definition = {
            "name": DATASET,
            "attributes": [
                {"name": "call_id", "type": "String", "key": True},
                {"name": "nurse", "type": "String"},
                {"name": "bed", "type": "String"},
            ],
        }
        r = await api.post("/datasets", json=definition)
        assert r.status_code == 201, r.text
        rule = {
            "name": "webpush-alert",
            "purpose": "test: a call alerts the nurse named in the record",
            "dataset": DATASET,
            "adapter": "XMPP",
            "action": "Send Alert",
            "active": True,
            "trigger": {"create": True, "update": False, "attributes": []},
            "conditions": {"all": []},
            "settings": {
                "recipients": "#{nurse}",
                "subject": "Call",
                "message": "#{bed}",
                "ttl": 10,
                "priority": "Urgent",
            },
        }
        r = await api.post("/rules/import", json={"rules": [rule]})
        assert r.status_code in (200, 201), r.text
        r = await api.post(
            f"/datasets/{DATASET}/records",
            json={"values": {"call_id": "c1", "nurse": server.jid(login), "bed": "Bed 4 Jane Roe"}},
        )
        assert r.status_code == 201, r.text


async def test_an_alert_reaches_the_browser_push_service(
    tmp_path: Path, stub: WebPushServer
) -> None:
    env = {
        "CAREWIRE_PUSH_ENABLED": "true",
        "CAREWIRE_PUSH_WEBPUSH": "true",
        "CAREWIRE_PUSH_WEBPUSH_ALLOW_LOOPBACK": "true",
        "CAREWIRE_PUSH_CA_FILE": str(stub.cert_file),
    }
    manager = running_server(tmp_path / "data", accounts=1, env=env)
    server = await asyncio.to_thread(manager.__enter__)
    try:
        key_file = server.data_dir / "keys" / "vapid.pem"
        assert key_file.stat().st_mode & 0o077 == 0  # made by init, owner-only
        browser = Browser()
        async with clients() as slix:
            nurse, password = server.account()
            web = await slix(server, nurse, password, resource="web")
            vapid = await ask(web, "get", f"<vapid xmlns='{NS}'/>")
            assert vapid is not None
            stub.application_server_key = unb64url(vapid.get("key", ""))
            endpoint = stub.endpoint()
            assert await refused(
                web,
                subscribe(endpoint.replace("https:", "http:"), browser.p256dh, browser.auth_b64),
            ) == ("bad-request", "the endpoint must be an https:// URL")
            condition, text = await refused(
                web, subscribe(endpoint, browser.p256dh[:40], browser.auth_b64)
            )
            assert condition == "bad-request" and text.startswith("p256dh must be")
            condition, text = await refused(web, subscribe(endpoint, browser.p256dh, "AAAA"))
            assert condition == "bad-request" and text.startswith("auth must be a 16-byte")
            await ask(web, "set", subscribe(endpoint, browser.p256dh, browser.auth_b64))
            await web.disconnect()  # the tab is closed
            await raise_alert(server, nurse)
            (push,) = await stub.wait_for(1, timeout=20)
            log = server.log()
        assert push.problems == () and push.status == 201
        assert push.headers["urgency"] == "high"
        plain = browser.decrypt(push.body)
        data = json.loads(plain)
        assert (data["type"], data["count"]) == ("alert", 1)
        assert b"Jane" not in plain and b"Bed" not in plain and nurse.encode() not in plain
        assert endpoint not in log and browser.auth_b64 not in log  # never logged
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
