"""``deploy/haproxy/haproxy.cfg`` in front of two nodes: clients log in through it, and back in
after the node they were on is killed.

The recipe itself is run, with loopback addresses: its ``bind`` lines get free
loopback ports, its ``server`` lines the nodes' real ports, ``maxconn`` fits
this process's file limit, and the lines a packaged HAProxy needs as root
(chroot, user, daemon, syslog) are left out;
every other option (leastconn, health checks, redispatch, timeouts) is the
file's. Which node a client is on is read from HAProxy's own statistics.
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.lease_support import cluster_nodes, free_port
from tests.deploy.tools import ROOT
from tests.interop.rawclient import HOST
from tests.interop.slix import SlixClient, connect
from tests.serverproc import RunningServer

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(180)]

RECIPE = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
#: The recipe's public ports and the node port each stands for (tests/serverproc names).
PORTS = {5222: "c2s", 5223: "c2s_tls", 8443: "https"}
#: What a packaged HAProxy does as root, left out here.
ROOT_ONLY = re.compile(r"^\s*(chroot|user|group|daemon|log /dev/log)\b")


#: CI installs HAProxy and sets this: then a missing one fails instead of skipping.
REQUIRE = bool(os.environ.get("CAREWIRE_TEST_REQUIRE_HAPROXY"))


def _haproxy() -> str:
    if not Path(HAPROXY).exists():
        missing = "haproxy is not installed (apt-get install haproxy)"
        if REQUIRE:
            pytest.fail(f"CAREWIRE_TEST_REQUIRE_HAPROXY is set but {missing}")
        pytest.skip(missing)
    return HAPROXY


@dataclass
class Balancer:
    """A running HAProxy: its ports (by the node port names) and statistics socket."""

    ports: dict[str, int]
    stats: Path
    domain: str
    proc: subprocess.Popen[bytes] = field(repr=False)

    def sessions(self, backend: str = "carewire_c2s") -> dict[str, int]:
        """Current sessions of each server of ``backend`` (``node1``, ``node2``)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
        return {
            r["svname"]: int(r["scur"])
            for r in rows
            if r["pxname"] == backend and r["svname"].startswith("node")
        }


def rewrite(text: str, nodes: list[RunningServer], public: dict[int, int], stats: Path) -> str:
    """The recipe with loopback ports, the nodes' ports, a private stats socket."""
    out = []
    for line in text.splitlines():
        if ROOT_ONLY.match(line):
            continue
        line = re.sub(r"stats socket \S+", f"stats socket {stats}", line)
        line = re.sub(r"^(\s*maxconn )\d+", r"\g<1>1000", line)  # the test's file limit
        bind = re.match(r"^(\s*bind )[^:\s]*:(\d+)(.*)$", line)
        if bind:
            line = f"{bind.group(1)}127.0.0.1:{public[int(bind.group(2))]}{bind.group(3)}"
        server = re.match(r"^(\s*server node(\d) )\S+:(\d+)(.*)$", line)
        if server:
            node = nodes[int(server.group(2)) - 1]
            port = node.ports[PORTS[int(server.group(3))]]
            line = f"{server.group(1)}127.0.0.1:{port}{server.group(4)}"
        out.append(line)
    return "\n".join(out) + "\n"


@contextmanager
def balancing(tmp_path: Path, nodes: list[RunningServer]) -> Iterator[Balancer]:
    public = {port: free_port() for port in PORTS}
    stats = tmp_path / "haproxy.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(rewrite(RECIPE.read_text(), nodes, public, stats))
    log = (tmp_path / "haproxy.log").open("wb")
    proc = subprocess.Popen([_haproxy(), "-db", "-f", str(cfg)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while not stats.exists() or not _listening(public[5222]):
            assert proc.poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)
        yield Balancer(
            ports={PORTS[p]: port for p, port in public.items()},
            stats=stats,
            domain=nodes[0].domain,
            proc=proc,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


async def eventually(check: Any, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


def test_the_recipe_is_valid_haproxy_configuration() -> None:
    done = subprocess.run(
        [_haproxy(), "-c", "-f", str(RECIPE)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = RECIPE.read_text()
    assert "send-proxy" not in text.replace("(no `send-proxy`)", "")  # the nodes do not read it
    assert "mode tcp" in text and "balance leastconn" in text and "option redispatch" in text


async def test_a_client_of_a_killed_node_logs_in_again_through_haproxy_to_the_survivor(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    _haproxy()
    async with cluster_nodes(tmp_path, redis_url, redis_prefix, accounts=2) as c:
        with balancing(tmp_path, c.nodes) as lb:
            await _kill_one_node_and_come_back(c.nodes, lb)


async def _kill_one_node_and_come_back(nodes: list[RunningServer], lb: Balancer) -> None:
    (login1, pw1), (login2, pw2) = nodes[0].account(), nodes[0].account()
    first = await connect(lb, login1, pw1, resource="phone")  # STARTTLS, end to end
    second: SlixClient | None = None
    try:
        await eventually(lambda: sum(lb.sessions().values()) == 1)
        (where,) = [name for name, n in lb.sessions().items() if n == 1]
        second = await connect(lb, login2, pw2, resource="phone")
        await eventually(lambda: lb.sessions() == {"node1": 1, "node2": 1})  # leastconn
        victim = nodes[int(where[-1]) - 1]
        survivor = "node2" if where == "node1" else "node1"

        restarted: asyncio.Queue[object] = asyncio.Queue()
        first.xmpp.add_event_handler("session_start", restarted.put_nowait)
        victim.proc.kill()  # SIGKILL: no goodbye to anyone
        victim.proc.wait(timeout=10)
        await eventually(lambda: bool(first.disconnects))
        # The same client connects again to the same address: HAProxy sends it to the node
        # that is left, where it logs in afresh (its session died with the other node).
        first.xmpp.connect(HOST, lb.ports["c2s"])
        await asyncio.wait_for(restarted.get(), 20)
        await eventually(lambda: lb.sessions()[survivor] == 2)
        # Both sessions answer on the survivor.
        for answering in (first, second):
            await answering.plugin["xep_0199"].ping(jid=lb.domain, timeout=10)
    finally:
        for client in (first, second):
            if client is not None:
                await client.disconnect()
