"""Cluster: the fencing tokens of the cluster-wide singleton jobs.

See docs/cluster-singletons.md.

Revision ID: 0024_cluster_fence
Revises: 0022_federation
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_cluster_fence"
down_revision: str | None = "0023_webpush"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``cluster_fence`` (empty: a group's row appears with its first leader)."""
    op.create_table(
        "cluster_fence",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cluster_fence"),
    )


def downgrade() -> None:
    """Drop ``cluster_fence``."""
    op.drop_table("cluster_fence")
