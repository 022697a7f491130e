"""The ``[cluster]`` section of the configuration: several nodes serving one domain.

Kept apart from :mod:`carewire.config`, which loads it like every other
section (``CAREWIRE_CLUSTER_<KEY>`` variables included). An empty
``redis_url`` is the embedded default: one node, no Redis needed.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from carewire.errors import ConfigError

_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_PREFIX = re.compile(r"^[A-Za-z0-9:._-]{1,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSection:
    """[cluster]: nodes sharing PostgreSQL for storage and Redis for what they share at once."""

    redis_url: str = ""  # redis://HOST:6379/0, rediss://… or redis+sentinel://; empty: one node
    node_id: str = ""  # this node's name in the cluster; empty: the host name and process id
    key_prefix: str = "carewire:"  # every Redis key and channel starts with it
    heartbeat_seconds: float = 1.0  # how often a node renews its liveness and sessions
    node_timeout_seconds: float = 5.0  # a node silent this long is dead: its sessions go


def is_clustered(c: ClusterSection) -> bool:
    """Whether this node is one of several (a Redis URL is set)."""
    return bool(c.redis_url.strip())


def node_name(c: ClusterSection) -> str:
    """This node's id: ``cluster.node_id``, else ``<host name>-<process id>``."""
    if c.node_id:
        return c.node_id
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}"


def coerce_number(key: str, value: object, from_env: bool) -> float:
    """A number of seconds from the file (``1``, ``0.25``) or a variable (``"0.25"``).

    Raises:
        ConfigError: Not a number; the message names the key.
    """
    if from_env and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return float(value)


def validate_cluster(c: ClusterSection) -> None:
    """Check ``[cluster]``.

    Raises:
        ConfigError: A value out of range; the message names the key.
    """
    if c.redis_url:
        scheme = urlsplit(c.redis_url).scheme
        if scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
            raise ConfigError(
                "cluster.redis_url: expected redis://HOST:PORT/DB, rediss://… (TLS), unix://… "
                f"or redis+sentinel://HOST:PORT/SERVICE, got a {scheme or 'bare'!r} URL"
            )
    if c.node_id and not _NODE_ID.match(c.node_id):
        raise ConfigError(
            "cluster.node_id: letters, digits, '.', '_' and '-' only (at most 63), "
            f"got {c.node_id!r}"
        )
    if not _PREFIX.match(c.key_prefix):
        raise ConfigError(
            f"cluster.key_prefix: letters, digits and ':._-' only (1-64), got {c.key_prefix!r}"
        )
    if not 0.05 <= c.heartbeat_seconds <= 60:
        raise ConfigError(
            f"cluster.heartbeat_seconds: between 0.05 and 60, got {c.heartbeat_seconds}"
        )
    if not c.heartbeat_seconds * 2 <= c.node_timeout_seconds <= 600:
        raise ConfigError(
            "cluster.node_timeout_seconds: at least twice cluster.heartbeat_seconds and at "
            f"most 600, got {c.node_timeout_seconds}"
        )
