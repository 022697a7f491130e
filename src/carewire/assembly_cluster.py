"""The cluster's assembly (docs/cluster.md): a :class:`Cluster` when ``[cluster]`` asks for one.

Kept apart from :mod:`carewire.assembly` (within its size bound). Only the
server joins a cluster (the CLI never does): it builds the service once the
features are loaded and keeps it as ``Assembly.cluster`` (its Redis client also
serves the singleton lease and the shared counters, server_jobs.py), calls
:func:`start_cluster` before it listens, and :func:`stop_cluster` once its
sessions have ended (which closes the client).
An empty ``redis_url`` builds nothing: one node, no Redis touched.
"""

from __future__ import annotations

from carewire.cluster import Cluster
from carewire.cluster.redis import connect
from carewire.config_cluster import ClusterSection, is_clustered
from carewire.core.kernel import Kernel


def cluster_service(settings: ClusterSection, kernel: Kernel) -> Cluster | None:
    """This node's part in the cluster (its Redis client made, not yet connected), or None."""
    if not is_clustered(settings):
        return None
    return Cluster(settings, kernel, connect(settings))


async def start_cluster(cluster: Cluster | None) -> None:
    """Join the cluster: registry, routing, rooms (nothing for one node)."""
    if cluster is not None:
        await cluster.start()


async def stop_cluster(cluster: Cluster | None) -> None:
    """Leave the cluster and close the Redis client (nothing for one node)."""
    if cluster is not None:
        await cluster.close()
