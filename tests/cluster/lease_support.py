"""What the lease and counter tests share: Redis clients, a private Redis, a fence database.

A private ``redis-server`` runs on a free loopback port for the tests that
take Redis down; the fence tests get a fresh PostgreSQL database each (only
the ``cluster_fence`` table: nothing else is needed, and it is quick).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from carewire.storage import Database
from carewire.storage.tables_cluster import cluster_fence
from tests.pgdb import fresh_pg_database
from tests.serverproc import RunningServer, ServeSpec, init_data_dir, server_env, serving_together

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """A ``redis-server`` of this test's own (killed by :meth:`kill`, or at the end)."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """Start a Redis on a free loopback port, without persistence; kill it afterwards."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PrivateRedis(port=port, proc=proc)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.02)
        yield server
    finally:
        server.kill()


def client(url: str, *, timeout: float = 0.5) -> Redis:
    """A Redis client with short timeouts (a dead server must not hang a test)."""
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


@dataclass
class ClusterNodes:
    """Two running nodes of one cluster and what they share."""

    nodes: list[RunningServer]
    database_url: str
    lease_seconds: float


#: The lease of the end-to-end tests: renewed every 0.5 s, gone 3 s after a crash.
HEARTBEAT_SECONDS = 0.5
LEASE_SECONDS = 3.0


@asynccontextmanager
async def cluster_nodes(
    tmp_path: Path, redis_url: str, prefix: str, *, accounts: int
) -> AsyncIterator[ClusterNodes]:
    """Two ``carewire serve`` nodes on one new PostgreSQL database and one Redis prefix.

    The second node's data directory is a copy of the first's (with the key and
    audit directories beside it): the nodes of a cluster share the key-encryption
    key, the audit key, the certificate and the server secret.
    """
    async with fresh_pg_database() as url:
        env = server_env({"CAREWIRE_STORAGE_URL": url})
        first = tmp_path / "node-a"
        init_data_dir(first, accounts=accounts, env=env)
        second = tmp_path / "node-b"
        for suffix in ("", "-keys", "-audit"):
            if (tmp_path / f"node-a{suffix}").exists():
                shutil.copytree(tmp_path / f"node-a{suffix}", tmp_path / f"node-b{suffix}")
        specs = [
            ServeSpec(
                data_dir=where,
                accounts=accounts,
                env={
                    **env,
                    "CAREWIRE_CLUSTER_REDIS_URL": redis_url,
                    "CAREWIRE_CLUSTER_KEY_PREFIX": prefix,
                    "CAREWIRE_CLUSTER_NODE_ID": where.name,
                    "CAREWIRE_CLUSTER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                    "CAREWIRE_CLUSTER_NODE_TIMEOUT_SECONDS": str(LEASE_SECONDS),
                },
            )
            for where in (first, second)
        ]
        with serving_together(specs, start_timeout=90) as nodes:
            yield ClusterNodes(nodes=nodes, database_url=url, lease_seconds=LEASE_SECONDS)


@asynccontextmanager
async def fence_database() -> AsyncIterator[Database]:
    """A fresh PostgreSQL database holding ``cluster_fence``; dropped afterwards."""
    async with fresh_pg_database() as url:
        db = await Database.open(url)
        try:
            async with db.transaction("create_cluster_fence") as txn:
                await txn.conn.run_sync(lambda c: cluster_fence.create(c))
            yield db
        finally:
            await db.close()


async def until(predicate: Callable[[], object], *, within: float, step: float = 0.02) -> bool:
    """Poll ``predicate()`` (sync or async) until true or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
