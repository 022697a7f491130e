"""The [cluster] section: one node by default; bad values name their key."""

from __future__ import annotations

import pytest

from carewire.config_cluster import ClusterSection, is_clustered, node_name, validate_cluster
from carewire.errors import ConfigError


def test_default_is_one_node_without_redis() -> None:
    c = ClusterSection()
    validate_cluster(c)
    assert not is_clustered(c)
    assert node_name(c)  # host name and pid


def test_configured_cluster() -> None:
    c = ClusterSection(redis_url="redis://127.0.0.1:6379/0", node_id="node-a")
    validate_cluster(c)
    assert is_clustered(c)
    assert node_name(c) == "node-a"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"redis_url": "http://127.0.0.1:6379"}, "cluster.redis_url"),
        ({"node_id": "bad node"}, "cluster.node_id"),
        ({"key_prefix": "has space"}, "cluster.key_prefix"),
        ({"heartbeat_seconds": 0}, "cluster.heartbeat_seconds"),
        ({"heartbeat_seconds": 2.0, "node_timeout_seconds": 3.0}, "cluster.node_timeout_seconds"),
    ],
)
def test_bad_values_name_their_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_cluster(ClusterSection(**values))  # type: ignore[arg-type]
