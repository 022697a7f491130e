"""Several Carewire nodes in the test's process, on one PostgreSQL database and one Redis.

Each node is a whole :class:`~carewire.server.Server` on free loopback ports
(STARTTLS, the self-signed certificate of the shared data directory), with
its own ``[cluster] node_id``, a short heartbeat and the test's key prefix.
The nodes share the data directory as nodes of one installation share their
keys. :func:`pg_database` makes the test's database (a copy of the suite's
template) and drops it after.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from carewire.cluster import Cluster
from carewire.config import CONFIG_FILE, load, render_default
from carewire.core.accounts import AccountInput
from carewire.server import Server
from carewire.xmpp.jid import JID
from tests.pgdb import fresh_pg_database
from tests.templates import prefill

DOMAIN = "carewire.test"
PASSWORD = "correct horse battery"
HEARTBEAT = 0.2
NODE_TIMEOUT = 3.0  # a loaded test machine may stall a node's loop for a second
WAIT = 10.0
STOP_WITHIN = 30.0


@dataclass(frozen=True)
class Reached:
    """Where slixmpp clients find one node."""

    domain: str
    ports: dict[str, int] = field(default_factory=dict)


def cluster_of(server: Server) -> Cluster:
    """The running node's cluster service."""
    assert server.assembly is not None and server.assembly.cluster is not None
    return server.assembly.cluster


def at(server: Server) -> Reached:
    """Where to log in to ``server``."""
    return Reached(DOMAIN, dict(server.ports))


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait (bounded) until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


def knows(server: Server, jid: str, *, available: bool = True) -> Callable[[], bool]:
    """Whether ``server`` sees the session ``jid`` held by another node (available, if asked)."""

    def check() -> bool:
        stand_in = cluster_of(server).remote.get(JID.parse(jid))
        return stand_in is not None and (stand_in.is_available or not available)

    return check


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for one test (dropped after)."""
    async with fresh_pg_database() as url:
        await prefill(url)
        yield url


class Nodes:
    """Starts and stops the nodes of one test."""

    def __init__(self, data_dir: Path, db_url: str, redis_url: str, prefix: str) -> None:
        self.data_dir, self.db_url, self.redis_url, self.prefix = (
            data_dir,
            db_url,
            redis_url,
            prefix,
        )
        self.running: list[Server] = []
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / CONFIG_FILE).write_text(render_default(DOMAIN), encoding="utf-8")

    async def start(self, node_id: str) -> Server:
        """One more node."""
        config = load(
            self.data_dir,
            env={},
            overrides={
                "server": {"c2s_port": 0, "c2s_tls_port": 0, "websocket": False},
                "storage": {"url": self.db_url},
                "cluster": {
                    "redis_url": self.redis_url,
                    "node_id": node_id,
                    "key_prefix": self.prefix,
                    "heartbeat_seconds": HEARTBEAT,
                    "node_timeout_seconds": NODE_TIMEOUT,
                },
            },
        )
        server = Server(config)
        self.running.append(server)
        await server.start()
        return server

    async def accounts(self, *logins: str) -> None:
        """Create accounts (password :data:`PASSWORD`) through the first node."""
        assert self.running and self.running[0].assembly is not None
        accounts = self.running[0].assembly.accounts
        for login in logins:
            await accounts.create(AccountInput(login=login, password=PASSWORD))

    async def crash(self, server: Server) -> None:
        """``server`` stops abruptly for the cluster: its tasks end, nothing is cleaned up."""
        await cluster_of(server).abandon()

    async def stop_all(self) -> None:
        """Stop every node, each within :data:`STOP_WITHIN` (a hang fails with task stacks)."""
        for server in reversed(self.running):
            async with bounded(STOP_WITHIN, "stopping a node"):
                await server.stop()
        self.running.clear()


@asynccontextmanager
async def bounded(seconds: float, what: str) -> AsyncIterator[None]:
    """Like ``asyncio.timeout``, but running late fails with where every task waits."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what} took over {seconds} s; tasks:\n{task_stacks()}") from None


def task_stacks() -> str:
    """Where every task of the loop waits (for a failure message)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=8, file=out)
    return out.getvalue()


@asynccontextmanager
async def nodes(tmp_path: Path, redis_url: str, prefix: str) -> AsyncIterator[Nodes]:
    """A fresh database and a :class:`Nodes` on it; every node stopped after."""
    async with pg_database() as db_url:
        made = Nodes(tmp_path / "data", db_url, redis_url, prefix)
        try:
            yield made
        finally:
            await made.stop_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server of the test's own on a loopback port (killed and restarted at will)."""

    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
            self.proc = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started private Redis; skipped where redis-server is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(free_port())
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()
