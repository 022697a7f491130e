"""Several Carewire nodes serving one domain (docs/cluster.md).

The nodes share PostgreSQL for storage and Redis for what they must share at
once: :mod:`.wire` (keys and envelopes, no I/O), :mod:`.redis` (the node's
client), :mod:`.registry` (the mirror of other nodes' sessions), :mod:`.rooms`
(which node owns which room) and :mod:`.node` (the :class:`Cluster` service:
registry, heartbeat, stanza routing between nodes). The assembly builds a
:class:`Cluster` only when ``[cluster] redis_url`` is set; other cluster
services use its ``redis`` client and ``node`` id.
"""

from __future__ import annotations

from carewire.cluster.node import Cluster

__all__ = ["Cluster"]
