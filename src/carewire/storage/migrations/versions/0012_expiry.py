"""Message expiry: the queue of messages still to expire, ordered by their expiry.

Revision ID: 0012_expiry
Revises: 0010_busy_periods
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_expiry"
down_revision: str | None = "0010_busy_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``message_expiry`` with its index on ``expires_at``."""
    op.create_table(
        "message_expiry",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(3071), nullable=True),
        sa.Column("peer", sa.String(3071), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name="pk_message_expiry"),
    )
    op.create_index("ix_message_expiry_expires_at", "message_expiry", ["expires_at"])


def downgrade() -> None:
    """Drop it (messages already recorded keep their ``expires_at``; nothing expires them)."""
    op.drop_index("ix_message_expiry_expires_at", table_name="message_expiry")
    op.drop_table("message_expiry")
