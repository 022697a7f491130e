"""The REST API end to end: a real server over HTTPS, a token from the CLI, a rule firing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.interop.helpers import log_tail, own_server
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

DATASET = "E2E_CALLS"
RULE = "note e2e calls"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with own_server(tmp_path_factory, "api-e2e", env={}, accounts=0) as s:
        yield s


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server's API with an admin token made by ``carewire token create``."""
    r = server.cli("token", "create", "e2e", "--role", "admin")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("cw_") and token not in r.stderr
    base = f"https://127.0.0.1:{server.ports['https']}/api/v1"
    # The server's certificate is self-signed for its chat domain, not for 127.0.0.1.
    async with httpx.AsyncClient(
        base_url=base, verify=False, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


async def test_a_rule_fires_over_https(server: RunningServer, admin: httpx.AsyncClient) -> None:
    r = await admin.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"/rules", "/adapters", "/deliveries", "/adapter-kinds"} <= set(paths)

    r = await admin.get("/adapters")
    assert r.status_code == 200, r.text
    names = {a["reference_name"]: a for a in r.json()["adapters"]}
    assert names["DataUpdate"]["enabled"] is True and names["XMPP"]["enabled"] is True
    r = await admin.get("/adapters/DataUpdate")
    assert r.json()["health"]["state"] == "running"

    dataset = {
        "name": DATASET,
        "attributes": [
            {"name": "bed", "type": "String", "key": True},
            {"name": "status", "type": "String"},
            {"name": "note", "type": "String"},
        ],
    }
    r = await admin.post("/datasets", json=dataset)
    assert r.status_code == 201, r.text
    rule = {
        "name": RULE,
        "dataset": DATASET,
        "adapter": "DataUpdate",
        "action": "Update Record",
        "conditions": [{"path": "status", "op": "equals", "value": "Open"}],
        "settings": {"updates": "note=seen #{bed}"},
    }
    r = await admin.post("/rules", json=rule)
    assert r.status_code == 201, r.text
    r = await admin.post(
        f"/datasets/{DATASET}/records", json={"values": {"bed": "A1", "status": "Open"}}
    )
    assert r.status_code == 201, r.text
    record = f"/datasets/{DATASET}/records/{r.json()['id']}"

    deadline = time.monotonic() + 5
    while True:
        note = (await admin.get(record)).json()["values"].get("note")
        found = (await admin.get("/deliveries", params={"rule": RULE})).json()["deliveries"]
        statuses = [d["values"]["status"] for d in found]
        if (note and statuses == ["Delivered"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert note == "seen A1", log_tail(server)
    assert statuses == ["Delivered"], log_tail(server)
    r = await admin.get(f"/deliveries/{found[0]['id']}")
    history = [h["values"]["status"] for h in r.json()["history"]]
    assert history == ["Queued", "Processing", "Delivered"]
