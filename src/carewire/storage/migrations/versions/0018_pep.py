"""PEP nodes and their persistent items (XEP-0163, XEP-0223).

Revision ID: 0018_pep
Revises: 0015_phi
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_pep"
down_revision: str | None = "0017_upload"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LOGIN = 1023
_JID = 3071
_NODE = 1023


def upgrade() -> None:
    """Create ``pep_nodes`` and ``pep_items``."""
    op.create_table(
        "pep_nodes",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("owner", sa.String(_LOGIN), nullable=False),
        sa.Column("node", sa.String(_NODE), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"], ["accounts.login"], name="fk_pep_nodes_owner_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pep_nodes"),
        sa.UniqueConstraint("owner", "node", name="uq_pep_nodes_owner"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "pep_items",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("node_id", _ID, nullable=False),
        sa.Column("item_id", sa.String(_NODE), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("publisher", sa.String(_JID), nullable=False),
        sa.Column("published_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["pep_nodes.id"], name="fk_pep_items_node_id_pep_nodes", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pep_items"),
        sa.UniqueConstraint("node_id", "item_id", name="uq_pep_items_node_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pep_items_node_seq", "pep_items", ["node_id", "seq"])


def downgrade() -> None:
    """Drop them (items first)."""
    op.drop_index("ix_pep_items_node_seq", table_name="pep_items")
    op.drop_table("pep_items")
    op.drop_table("pep_nodes")
