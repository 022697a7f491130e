"""``deploy/cluster/``: the two-node recipe around the HAProxy one (configuration, systemd
drop-in, Redis), checked by the code's own loader, ``systemd-analyze`` and a real Redis.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from carewire.cluster.lease import LeaseTiming
from carewire.config import load
from carewire.config_cluster import is_clustered, node_name
from tests.cluster.lease_support import free_port, until
from tests.deploy.tools import ROOT, systemd_tool

CLUSTER = ROOT / "deploy" / "cluster"
UNIT = ROOT / "deploy" / "systemd" / "carewire.service"
RECIPE = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
EXEC = "/opt/carewire/bin/carewire"


def test_the_nodes_configuration_is_clustered_and_valid(tmp_path: Path) -> None:
    example = CLUSTER / "carewire.toml"
    cfg = load(Path("/var/lib/carewire"), config_file=example, env={})
    c = cfg.cluster
    assert is_clustered(c) and cfg.storage.url.startswith("postgresql://")
    LeaseTiming.of(c.node_timeout_seconds, c.heartbeat_seconds)  # the lease fits its timing
    # The drop-in names the node; the environment wins over the file.
    dropin = (CLUSTER / "cluster.conf").read_text()
    (node,) = re.findall(r"^Environment=CAREWIRE_CLUSTER_NODE_ID=(\S+)$", dropin, re.M)
    named = load(
        Path("/var/lib/carewire"), config_file=example, env={"CAREWIRE_CLUSTER_NODE_ID": node}
    )
    assert node_name(named.cluster) == node == "node1"
    # Redis and HAProxy are where the configuration and the recipe say the nodes find them.
    assert "10.0.0.20" in c.redis_url
    assert re.findall(r"server node\d (\S+:5222)", RECIPE.read_text()) == [
        "10.0.0.11:5222",
        "10.0.0.12:5222",
    ]


def test_the_drop_in_passes_systemd_analyze_verify_with_the_unit(tmp_path: Path) -> None:
    analyze = systemd_tool("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the run's summary says so)")
    stand_in = tmp_path / "carewire"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "carewire.service"
    unit.write_text(UNIT.read_text().replace(f"ExecStart={EXEC} ", f"ExecStart={stand_in} "))
    (tmp_path / "carewire.service.d").mkdir()
    (tmp_path / "carewire.service.d" / "cluster.conf").write_text(
        (CLUSTER / "cluster.conf").read_text()
    )
    done = subprocess.run(
        [str(analyze), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


async def test_redis_runs_with_the_recipes_settings(tmp_path: Path) -> None:
    """The recipe's redis.conf, on loopback and a free port: password, no eviction."""
    conf = (CLUSTER / "redis.conf").read_text()
    port = free_port()
    local = re.sub(r"^bind .*$", "bind 127.0.0.1", conf, flags=re.M) + f"port {port}\n"
    (tmp_path / "redis.conf").write_text(local)
    (password,) = re.findall(r"^requirepass (\S+)", conf, re.M)
    proc = subprocess.Popen(
        ["redis-server", str(tmp_path / "redis.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    client = Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)
    try:

        async def answers() -> bool:
            try:
                return bool(await client.ping())
            except (RedisError, OSError):  # not listening yet
                return False

        assert await until(answers, within=10)
        policy = await client.config_get("maxmemory-policy")
        assert policy == {"maxmemory-policy": "noeviction"}
        assert (await client.config_get("appendonly")) == {"appendonly": "no"}
    finally:
        await client.aclose()
        proc.kill()
        proc.wait(timeout=10)
