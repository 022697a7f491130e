"""Failed logins survive the server being killed right after them; the trail stays verifiable.

A failure is committed before its SASL answer leaves the server, so SIGKILL
the moment the last answer arrives loses none. The server also opens the audit
key's epoch and signs a checkpoint at start, outside the data directory.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from tests.interop.rawclient import RawClient
from tests.serverproc import init_data_dir, server_env, serving

pytestmark = pytest.mark.interop


def _count(data_dir: Path, sql: str, *params: object) -> int:
    con = sqlite3.connect(f"file:{data_dir / 'carewire.db'}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


async def _fail(port: int, domain: str, login: str, mechanism: str) -> str:
    client = await RawClient.connect(port, domain=domain)
    try:
        await client.open_stream()
        await client.starttls()
        return await client.authenticate(login, "definitely-wrong", mechanism)
    finally:
        await client.aclose()


async def test_failed_logins_survive_sigkill(tmp_path: Path) -> None:
    env = server_env()
    init_data_dir(tmp_path, accounts=2, env=env)
    logins = ["user0", "user1", "ghost-one", "ghost-two", "user0"]
    with serving(tmp_path, accounts=2, env=env, hard_stop=True) as server:
        answers = await asyncio.gather(
            *(
                _fail(server.ports["c2s"], server.domain, login, mech)
                for login, mech in zip(logins, ["SCRAM-SHA-256", "PLAIN"] * 3, strict=False)
            )
        )
        assert all("<not-authorized" in a for a in answers), answers
        # Leaving the block kills the server at once (SIGKILL): no flush on shutdown.
    failures = _count(tmp_path, "SELECT count(*) FROM login_audit WHERE outcome = 'failure'")
    assert failures == len(logins)
    in_trail = _count(
        tmp_path,
        "SELECT count(*) FROM audit_log WHERE action = 'login' AND outcome = 'failure'",
    )
    assert in_trail == len(logins)
    assert _count(tmp_path, "SELECT count(*) FROM audit_log WHERE action = 'audit.key'") == 0
    checkpoints = tmp_path.parent / f"{tmp_path.name}-audit" / "checkpoints.jsonl"
    first = [json.loads(line) for line in checkpoints.read_text().splitlines()]
    assert len(first) == 1 and first[0]["entry_id"] > 0  # signed at start

    with serving(tmp_path, accounts=2, env=env) as server:
        verify = server.cli("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "chain intact" in verify.stdout, verify.stdout
        assert "2 checkpoints" in verify.stderr, verify.stderr  # one per start
    assert "audit checkpoint {" in (tmp_path / "serve.log").read_text()  # the log's copy
