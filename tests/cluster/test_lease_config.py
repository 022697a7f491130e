"""The [cluster] seconds the lease is timed by, read from the file and from variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewire.cluster.lease import LeaseTiming
from carewire.config import load
from carewire.errors import ConfigError


def test_seconds_are_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "carewire.toml").write_text(
        '[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\nheartbeat_seconds = 1\n'
        "node_timeout_seconds = 4.5\n"
    )
    c = load(tmp_path, env={}).cluster
    assert (c.heartbeat_seconds, c.node_timeout_seconds) == (1.0, 4.5)
    c = load(tmp_path, env={"CAREWIRE_CLUSTER_HEARTBEAT_SECONDS": "0.25"}).cluster
    assert c.heartbeat_seconds == 0.25
    timing = LeaseTiming.of(c.node_timeout_seconds, c.heartbeat_seconds)
    assert timing.renew_every + timing.margin < timing.ttl


@pytest.mark.parametrize("bad", ["soon", "", "1s"])
def test_a_number_that_is_not_one_names_the_variable(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="CAREWIRE_CLUSTER_HEARTBEAT_SECONDS: expected a number"):
        load(tmp_path, env={"CAREWIRE_CLUSTER_HEARTBEAT_SECONDS": bad})


def test_a_string_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "carewire.toml").write_text('[cluster]\nnode_timeout_seconds = "5"\n')
    with pytest.raises(ConfigError, match=r"cluster\.node_timeout_seconds: expected a number"):
        load(tmp_path, env={})
