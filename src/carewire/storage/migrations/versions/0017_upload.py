"""File sharing (XEP-0363): the uploads' metadata; the files themselves are on disk.

Revision ID: 0017_upload
Revises: 0015_phi
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_upload"
down_revision: str | None = "0016_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``uploads`` with its indexes."""
    op.create_table(
        "uploads",
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(1023), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("slot_expires_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("file_id", name="pk_uploads"),
    )
    op.create_index("ix_uploads_token_hash", "uploads", ["token_hash"], unique=True)
    op.create_index("ix_uploads_owner_created_at", "uploads", ["owner", "created_at"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])
    op.create_index("ix_uploads_slot_expires_at", "uploads", ["slot_expires_at"])


def downgrade() -> None:
    """Drop it (the encrypted files under ``<data dir>/uploads`` are then unreachable)."""
    for name in (
        "ix_uploads_slot_expires_at",
        "ix_uploads_expires_at",
        "ix_uploads_owner_created_at",
        "ix_uploads_token_hash",
    ):
        op.drop_index(name, table_name="uploads")
    op.drop_table("uploads")
