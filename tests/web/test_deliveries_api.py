"""The /deliveries resource: rules created and fired through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.web.conftest import (
    CALLS,
    UPDATES,
    XMPP,
    Api,
    add_calls,
    alert_rule,
    assert_problem,
    update_rule,
)

RECORDS = f"/datasets/{CALLS}/records"


@pytest.fixture
async def running(api: Api) -> AsyncIterator[Api]:
    """The API with CALLS, its adapters, and the rules engine's worker running."""
    await add_calls(api.platform)
    await api.platform.engine.start(scheduler=False)
    try:
        yield api
    finally:
        await api.platform.engine.stop()  # the platform's close stops it too


async def _call(api: Api, bed: str, priority: int, status: str = "Open") -> int:
    values = {"call_id": f"call-{bed}", "bed": bed, "status": status, "priority": priority}
    r = await api.admin.post(RECORDS, json={"values": values})
    assert r.status_code == 201, r.text
    await api.platform.engine.drain()
    return int(r.json()["id"])


async def test_a_rule_created_through_the_api_fires(running: Api) -> None:
    r = await running.admin.post("/rules", json=update_rule())
    assert r.status_code == 201, r.text
    call = await _call(running, "A1", 1)

    r = await running.reader.get(f"{RECORDS}/{call}")
    assert r.json()["values"]["note"] == "seen A1"
    r = await running.reader.get("/deliveries")
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 1 and page["offset"] == 0 and page["limit"] == 100
    delivery = page["deliveries"][0]
    assert delivery["values"]["status"] == "Delivered"
    assert delivery["values"]["rule"] == "note open calls"
    assert delivery["values"]["interface_name"] == UPDATES
    assert delivery["values"]["source"] == f"{CALLS}/{call}"
    assert delivery["values"]["triggered_at"] == "2026-01-01T00:00:00+00:00"
    assert delivery["values"]["status_text"] == f"updated {CALLS}/{call}"

    r = await running.reader.get(f"/deliveries/{delivery['id']}")
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["id"] == delivery["id"] and detail["values"] == delivery["values"]
    history = detail["history"]
    assert [h["values"]["status"] for h in history] == ["Queued", "Processing", "Delivered"]
    assert all(h["values"]["delivery"] == delivery["id"] for h in history)
    assert [h["id"] for h in history] == sorted(h["id"] for h in history)

    await _call(running, "B2", 1, status="Closed")  # the conditions do not hold
    assert (await running.reader.get("/deliveries")).json()["total"] == 1


async def test_filters_and_paging(running: Api) -> None:
    for rule in (update_rule(), alert_rule()):
        assert (await running.admin.post("/rules", json=rule)).status_code == 201
    beds = {f"{CALLS}/{await _call(running, 'A1', 4)}": "A1"}  # both rules: Delivered, Error
    running.clock.advance(60)
    beds[f"{CALLS}/{await _call(running, 'B2', 1)}"] = "B2"  # the update rule only
    running.clock.advance(60)
    beds[f"{CALLS}/{await _call(running, 'C3', 5)}"] = "C3"  # both

    async def names(**params: str | int) -> list[tuple[str, str]]:
        r = await running.reader.get("/deliveries", params=params)
        assert r.status_code == 200, r.text
        found = r.json()["deliveries"]
        return [(beds[d["values"]["source"]], d["values"]["status"]) for d in found]

    everything = await names()
    assert len(everything) == 5
    assert [src for src, _ in everything] == ["C3", "C3", "B2", "A1", "A1"]  # newest first
    assert await names(status="Error") == [("C3", "Error"), ("A1", "Error")]
    r = await running.reader.get("/deliveries", params={"status": "Error"})
    assert "no XMPP server runs" in r.json()["deliveries"][0]["values"]["status_text"]
    assert await names(interface_name=XMPP) == [("C3", "Error"), ("A1", "Error")]
    assert [s for s, _ in await names(rule="note open calls")] == ["C3", "B2", "A1"]
    assert await names(rule="nothing") == []
    assert [s for s, _ in await names(since="2026-01-01T00:01:00Z")] == ["C3", "C3", "B2"]
    assert [s for s, _ in await names(until="2026-01-01T00:01:00Z")] == ["A1", "A1"]
    between = await names(since="2026-01-01T00:00:30Z", until="2026-01-01T00:01:30Z")
    assert between == [("B2", "Delivered")]

    r = await running.reader.get("/deliveries", params={"offset": 1, "limit": 2})
    page = r.json()
    assert page["total"] == 5 and page["offset"] == 1 and page["limit"] == 2
    assert [d["id"] for d in page["deliveries"]] == [d["id"] for d in (await _page(running))[1:3]]


async def _page(api: Api) -> list[dict[str, object]]:
    deliveries = (await api.reader.get("/deliveries")).json()["deliveries"]
    assert isinstance(deliveries, list)
    return deliveries


async def test_errors_and_tokens(running: Api) -> None:
    assert_problem(await running.reader.get("/deliveries/999"), 404, "record-not-found")
    r = await running.reader.get("/deliveries", params={"status": "Lost"})
    assert_problem(r, 422, "invalid-request", detail="status")
    r = await running.reader.get("/deliveries", params={"since": "yesterday"})
    assert_problem(r, 422, "wrong-type")
    r = await running.reader.get("/deliveries", params={"until": "2026-01-01T00:00:00"})
    assert_problem(r, 422, "wrong-type", detail="time zone")
    r = await running.reader.get("/deliveries", params={"limit": 0})
    assert_problem(r, 422, "invalid-request")
    for path in ("/deliveries", "/deliveries/1"):
        assert_problem(await running.anonymous.get(path), 401, "unauthorized")
    r = await running.admin.post("/deliveries", json={})
    assert_problem(r, 405, "method-not-allowed")
