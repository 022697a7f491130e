"""The cluster's fencing tokens (migration 0024_cluster_fence; see docs/cluster-singletons.md).

Part of the schema of :mod:`carewire.storage.tables`, which imports this module so
the table joins the shared :data:`~carewire.storage.schema_base.metadata`.

- ``cluster_fence``: per group of cluster-wide singleton jobs, the highest fencing
  token a leader has presented. A leader whose token is lower (its lease was taken
  over by another node) is refused before it runs anything.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from carewire.storage.schema_base import metadata

cluster_fence = Table(
    "cluster_fence",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("token", BigInteger, nullable=False),
)
