"""The cluster's assembly (docs/cluster.md): a :class:`Cluster` when ``[cluster]`` asks for one.

Kept apart from :mod:`carewire.assembly` (within its size bound). An empty
``redis_url`` builds nothing: one node, no Redis touched.
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
