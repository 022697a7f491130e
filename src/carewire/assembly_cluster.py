"""The cluster's assembly (docs/cluster.md): a :class:`Cluster` when ``[cluster]`` asks for one.

Kept apart from :mod:`carewire.assembly` (within its size bound). Only the
server joins a cluster (the CLI never does): it calls :func:`start_cluster`
once the features are loaded and before it listens, keeps the result as
``Assembly.cluster`` (where other cluster services find the Redis client and
the node id), and calls :func:`stop_cluster` once its sessions have ended.
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


async def start_cluster(settings: ClusterSection, kernel: Kernel) -> Cluster | None:
    """Build and start the cluster service (None: one node)."""
    cluster = cluster_service(settings, kernel)
    if cluster is not None:
        await cluster.start()
    return cluster


async def stop_cluster(cluster: Cluster | None) -> None:
    """Leave the cluster and close the Redis client (nothing for one node)."""
    if cluster is not None:
        await cluster.close()
