"""Shared helpers of the interop tests: health checks, the login audit, own servers."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.interop.rawclient import RawClient
from tests.serverproc import RunningServer, running_server

AUDIT_COLUMNS = ("at", "login", "remote_ip", "transport", "mechanism", "outcome", "reason")


async def raw_login(
    server: RunningServer, *, resource: str | None = None, **kwargs: Any
) -> RawClient:
    """A bound raw session of a fresh account on ``server`` (STARTTLS port)."""
    login, password = server.account()
    return await RawClient.login(
        server.ports["c2s"], login, password, domain=server.domain, resource=resource, **kwargs
    )


async def assert_healthy(client: RawClient) -> None:
    """The session still works: the server answers a ping and routes a message to it."""
    reply = await client.ping()
    assert 'type="result"' in reply or "type='result'" in reply, reply
    body = f"still-alive-{uuid.uuid4().hex}"
    await client.message(client.jid, body)
    await client.read_message(body)


def audit_rows(server: RunningServer, login: str) -> list[dict[str, Any]]:
    """The login-audit rows of ``login``, oldest first (read-only SQLite access)."""
    db = server.data_dir / "carewire.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        cur = con.execute(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM login_audit WHERE login = ? ORDER BY id",
            (login,),
        )
        return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


async def wait_audit_rows(
    server: RunningServer, login: str, count: int, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Poll until ``login`` has at least ``count`` audit rows (they are written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await asyncio.to_thread(audit_rows, server, login)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


@contextmanager
def own_server(
    factory: pytest.TempPathFactory, name: str, env: dict[str, str], accounts: int = 40
) -> Iterator[RunningServer]:
    """A server with its own settings (for module-scoped fixtures)."""
    with running_server(factory.mktemp(name), accounts=accounts, env=env) as server:
        yield server


def log_tail(server: RunningServer, lines: int = 40) -> str:
    """The end of the server log, for assertion messages."""
    return "\n".join(server.log().splitlines()[-lines:])
