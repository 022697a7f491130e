"""Raise an alert through the REST API and confirm its receipt from a real client."""

from __future__ import annotations

import re
import time

import httpx

from tests.interop.rawclient import RawClient
from tests.serverproc import RunningServer

DATASET = "METRIC_CALLS"
RULE = "metrics-alert-nurse"


async def _api(server: RunningServer) -> httpx.AsyncClient:
    r = server.cli("token", "create", f"metrics-{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    )


async def _alert_rule(api: httpx.AsyncClient) -> None:
    definition = {
        "name": DATASET,
        "attributes": [
            {"name": "call_id", "type": "String", "key": True},
            {"name": "nurse", "type": "String"},
        ],
    }
    r = await api.post("/datasets", json=definition)
    assert r.status_code == 201, r.text
    rule = {
        "name": RULE,
        "purpose": "test: a new call alerts the nurse named in the record",
        "dataset": DATASET,
        "adapter": "XMPP",
        "action": "Send Alert",
        "active": True,
        "trigger": {"create": True, "update": False, "attributes": []},
        "conditions": {"all": []},
        "settings": {"recipients": "#{nurse}", "subject": "Call", "message": "Call", "ttl": 10},
    }
    r = await api.post("/rules/import", json={"rules": [rule]})
    assert r.status_code in (200, 201), r.text


async def raise_and_receive(server: RunningServer, nurse: RawClient, login: str) -> None:
    """Create the rule (once), write a record naming ``login``, read the alert, confirm it."""
    async with await _api(server) as api:
        if (await api.get(f"/datasets/{DATASET}")).status_code == 404:
            await _alert_rule(api)
        r = await api.post(
            f"/datasets/{DATASET}/records",
            json={"values": {"call_id": f"c{time.monotonic_ns()}", "nurse": server.jid(login)}},
        )
        assert r.status_code == 201, r.text
    stanza = await nurse.read_until("urn:carewire:alert:0", timeout=20)
    head = re.search(r"<message[^>]*>", stanza[stanza.rfind("<message") :])
    assert head is not None
    attrs = dict(re.findall(r"""(\w+)=['"]([^'"]*)['"]""", head.group()))
    room, alert_id = attrs["from"], attrs["id"]
    # The client confirms receipt (XEP-0333 <received/>, naming the alert's stanza id).
    await nurse.send(
        f"<message to='{room}' type='normal'>"
        f"<received xmlns='urn:xmpp:chat-markers:0' id='{alert_id}'/></message>"
    )
