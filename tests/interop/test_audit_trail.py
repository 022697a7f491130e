"""XMPP logins and refused API requests land in the audit trail of a real server.

Read straight from the server's SQLite file, read-only. Login entries are
written in batches with the login audit (~0.2 s), so reads poll with a bound.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.interop.rawclient import RawClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


def trail_rows(server: RunningServer, where: str, *params: str) -> list[dict[str, Any]]:
    """Audit-trail rows matching ``where``, oldest first."""
    con = sqlite3.connect(f"file:{server.data_dir / 'carewire.db'}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        cur = con.execute(f"SELECT * FROM audit_log WHERE {where} ORDER BY id", params)
        return [{**dict(r), "details": json.loads(r["details"])} for r in cur.fetchall()]
    finally:
        con.close()


async def wait_rows(
    server: RunningServer, count: int, where: str, *params: str
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5.0
    while True:
        rows = await asyncio.to_thread(trail_rows, server, where, *params)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_wrong_password_is_a_login_failure(server: RunningServer) -> None:
    login, password = server.account()
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    failure = await client.authenticate(login, password + "-wrong", "SCRAM-SHA-256")
    assert "<not-authorized" in failure, failure
    assert (await client.authenticate(login, password, "PLAIN")).startswith("<success")
    await client.aclose()

    rows = await wait_rows(server, 2, "actor = ?", f"xmpp:{login}")
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("login", "failure"),
        ("login", "success"),
    ], rows
    fail, ok = rows
    assert fail["channel"] == "xmpp" and fail["target"] == login
    assert fail["remote_ip"] == "127.0.0.1"
    assert fail["details"] == {
        "mechanism": "SCRAM-SHA-256",
        "transport": "c2s",
        "result": "failure",
        "reason": "not-authorized",
    }
    assert ok["details"] == {"mechanism": "PLAIN", "transport": "c2s", "result": "success"}
    assert password not in json.dumps(rows)
    r = await asyncio.to_thread(server.cli, "audit", "verify")
    assert r.returncode == 0 and "chain intact" in r.stdout, (r.stdout, r.stderr)


async def test_unknown_account_is_a_login_failure(server: RunningServer) -> None:
    ghost = "ghost-trail-user"
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    assert "<not-authorized" in await client.authenticate(ghost, "nope", "PLAIN")
    await client.aclose()
    rows = await wait_rows(server, 1, "actor = ?", f"xmpp:{ghost}")
    assert rows and rows[-1]["outcome"] == "failure" and rows[-1]["action"] == "login", rows


async def test_bad_api_token_is_recorded(server: RunningServer) -> None:
    base = f"https://127.0.0.1:{server.ports['https']}/api/v1"
    headers = {"Authorization": "Bearer cw_interop-bad-token"}
    async with httpx.AsyncClient(base_url=base, verify=False, timeout=10, headers=headers) as c:
        assert (await c.get("/rules?interop-audit")).status_code == 401
    rows = await wait_rows(server, 1, "action = 'api.auth' AND target = 'GET /api/v1/rules'")
    assert rows and rows[-1]["outcome"] == "failure" and rows[-1]["remote_ip"] == "127.0.0.1"
    assert "interop-bad-token" not in json.dumps(rows)
