"""Every login attempt lands in the login audit (who, when, from where, how, outcome).

Read straight from the server's SQLite file, read-only. The audit is written
in batches (~0.2 s), so reads poll with a bound.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.interop.helpers import wait_audit_rows
from tests.interop.rawclient import RawClient
from tests.interop.wsclient import WsXmpp
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


def _parse_at(value: object) -> datetime:
    """The ``at`` column as an aware UTC datetime (SQLite keeps it as text)."""
    at = datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def test_success_and_failure_rows(server: RunningServer) -> None:
    """A failed and a successful login give one row each, with transport, mechanism and reason."""
    login, password = server.account()
    started = datetime.now(UTC)
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    failure = await client.authenticate(login, password + "-wrong", "SCRAM-SHA-256")
    assert "<not-authorized" in failure, failure
    assert (await client.authenticate(login, password, "PLAIN")).startswith("<success")
    await client.aclose()
    direct = await RawClient.login(
        server.ports["c2s_tls"],
        login,
        password,
        domain=server.domain,
        direct_tls=True,
        mechanism="SCRAM-SHA-1",
    )
    await direct.end_stream()

    rows = await wait_audit_rows(server, login, 3)
    assert len(rows) == 3, rows
    fail, ok, ok_direct = rows
    assert fail["outcome"] == "failure" and fail["reason"] == "not-authorized", fail
    assert fail["mechanism"] == "SCRAM-SHA-256" and fail["transport"] == "c2s", fail
    assert ok["outcome"] == "success" and ok["mechanism"] == "PLAIN" and ok["transport"] == "c2s", (
        ok
    )
    assert ok_direct["outcome"] == "success", ok_direct
    assert ok_direct["mechanism"] == "SCRAM-SHA-1" and ok_direct["transport"] == "c2s-tls", (
        ok_direct
    )
    for row in rows:
        assert row["login"] == login and row["remote_ip"] == "127.0.0.1", row
        at = _parse_at(row["at"])
        assert started - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(seconds=5), row


async def test_websocket_login_is_audited(server: RunningServer) -> None:
    """A WebSocket login is recorded with transport 'websocket'."""
    login, password = server.account()
    async with WsXmpp.connect(server) as ws:
        await ws.login(login, password, "SCRAM-SHA-256")
        await ws.close()
    rows = await wait_audit_rows(server, login, 1)
    assert [(r["transport"], r["mechanism"], r["outcome"]) for r in rows] == [
        ("websocket", "SCRAM-SHA-256", "success")
    ], rows


async def test_unknown_account_is_audited(server: RunningServer) -> None:
    """Attempts on a login that does not exist are recorded too (as failures)."""
    ghost = "ghost-audit-user"
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    assert "<not-authorized" in await client.authenticate(ghost, "nope", "PLAIN")
    await client.aclose()
    rows = await wait_audit_rows(server, ghost, 1)
    assert rows and rows[-1]["outcome"] == "failure", rows
