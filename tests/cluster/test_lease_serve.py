"""End to end: two ``carewire serve`` nodes on one PostgreSQL database and one Redis prefix.

Exactly one node leads the singleton jobs (its log says so, and the database
holds its fencing token); SIGKILL it, and the survivor takes over within the
lease time (3 s here) with a larger token. A clean stop of the leader
releases the lease and says it no longer leads.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from tests.cluster.lease_support import ClusterNodes, cluster_nodes
from tests.serverproc import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(180)]

LEADS = re.compile(r"cluster: (\S+) now leads singletons \(fencing token (\d+)\)")


def leads(node: RunningServer) -> list[int]:
    """The fencing tokens this node's log says it led with, in order."""
    return [int(m.group(2)) for m in LEADS.finditer(node.log())]


async def fence_token(url: str) -> int | None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval("SELECT token FROM cluster_fence WHERE name = 'singletons'")
    finally:
        await conn.close()
    return None if value is None else int(value)


async def wait_for(check: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def test_one_node_leads_and_the_survivor_takes_over_after_a_kill(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with cluster_nodes(tmp_path, redis_url, redis_prefix, accounts=0) as c:
        survivor = await _exactly_one_leads_then_a_kill_hands_over(c)
    # Stopped cleanly (SIGTERM): it released the lease and said so, once.
    assert survivor.log().count("no longer leads singletons") == 1


async def _exactly_one_leads_then_a_kill_hands_over(c: ClusterNodes) -> RunningServer:
    a, b = c.nodes
    await wait_for(lambda: leads(a) or leads(b), within=20)
    await asyncio.sleep(c.lease_seconds)  # long enough for a second leader to show, were there one
    leader, survivor = (a, b) if leads(a) else (b, a)
    # One leader. A node stalled past its lease on a loaded machine loses it and may take it
    # again: the same node, each time with a larger token; the other node never led.
    tokens = leads(leader)
    assert tokens == sorted(set(tokens)) and leads(survivor) == []
    first = leads(leader)[-1]
    assert await fence_token(c.database_url) == first

    leader.proc.kill()  # SIGKILL: no release, the lease must expire
    leader.proc.wait(timeout=10)
    # Within the lease time (plus a renewal round and the log's polling), not "eventually".
    await wait_for(lambda: leads(survivor), within=c.lease_seconds + 5)
    taken = leads(survivor)
    assert taken == sorted(set(taken)) and taken[0] > first
    deadline = time.monotonic() + 5
    while await fence_token(c.database_url) != leads(survivor)[-1]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    return survivor
