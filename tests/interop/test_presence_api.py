"""Administrators set a user's presence through the REST API of a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.interop.helpers import own_server
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with own_server(tmp_path_factory, "presence-api", env={}, accounts=10) as s:
        yield s


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    r = server.cli("token", "create", f"desk-{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as client:
        yield client


async def _records(api: httpx.AsyncClient, dataset: str) -> list[dict[str, Any]]:
    r = await api.get(f"/datasets/{dataset}/records", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [dict(x["values"]) for x in r.json()["records"]]


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_unavailable_with_status_for_a_user_without_a_client(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    login, _ = server.account()
    r = await api.put(
        f"/presence/{login}", json={"presence_type": "Unavailable", "status": "In surgery"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["presence_type"] == "Unavailable"

    async def recorded() -> bool:
        users = [u for u in await _records(api, "USERS") if u["login"] == login]
        return bool(users) and users[0].get("presence_status") == "In surgery"

    await _eventually(recorded)
    history = [
        h for h in await _records(api, "PRESENCE_HISTORY") if h.get("status") == "In surgery"
    ]
    assert history and str(history[-1]["changed_by"]).startswith("api:desk-")


async def test_offline_ends_a_connected_client(
    server: RunningServer,
    api: httpx.AsyncClient,
    slix: Callable[..., Awaitable[SlixClient]],
) -> None:
    login, password = server.account()
    client = await slix(server, login, password)
    client.xmpp.send_presence()
    r = await api.put(f"/presence/{login}", json={"presence_type": "Offline"})
    assert r.status_code == 200, r.text

    async def gone() -> bool:
        return bool(client.disconnects)

    await _eventually(gone)


async def test_bad_requests(server: RunningServer, api: httpx.AsyncClient) -> None:
    r = await api.put("/presence/nobody-here", json={"presence_type": "Available"})
    assert r.status_code == 404
    assert "no user 'nobody-here'" in r.json()["detail"]
    login, _ = server.account()
    r = await api.put(f"/presence/{login}", json={"presence_type": "Sleeping"})
    assert r.status_code == 422
    r = await api.put(
        f"/presence/{login}", json={"presence_type": "Available", "status": "x" * 300}
    )
    assert r.status_code == 422
