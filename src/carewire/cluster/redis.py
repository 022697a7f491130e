"""The node's Redis client (redis.asyncio), made from ``[cluster] redis_url``.

One client per node: its connection pool serves the registry, the publisher
and the heartbeat; the subscriber takes a connection of its own. Every
command has a timeout (the node timeout), so a Redis that stops answering is
noticed like one that refuses connections (after ``node_timeout_seconds``, five
seconds at least).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from carewire.config_cluster import ClusterSection

#: The shortest timeout of a Redis command (seconds).
COMMAND_TIMEOUT = 5.0
#: What a Redis that is down (refused, reset, silent) raises.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def connect(settings: ClusterSection) -> Redis:
    """A client for ``settings.redis_url`` (no connection is made until first used).

    ``redis+sentinel://HOST:PORT/SERVICE`` asks the Sentinel at HOST:PORT for the
    master of SERVICE.
    """
    # Not shorter than a few seconds: a busy Redis or a busy node is not a dead Redis.
    timeout = max(settings.node_timeout_seconds, COMMAND_TIMEOUT)
    url = settings.redis_url.strip()
    parts = urlsplit(url)
    if parts.scheme == "redis+sentinel":
        sentinel = Sentinel(
            [(parts.hostname or "127.0.0.1", parts.port or 26379)],
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        master: Redis = sentinel.master_for(
            parts.path.strip("/") or "mymaster", socket_timeout=timeout
        )
        return master
    client: Redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return client


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def describe(url: str) -> str:
    """``url`` for logs: the password hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))
