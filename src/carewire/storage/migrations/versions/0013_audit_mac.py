"""Authenticated audit entries: a MAC per entry and the markers where MACs begin.

Existing entries keep a NULL ``mac``: they stay verifiable by hash, and the
first marker written after the upgrade (by the first append, or the server's
start) records the id and hash of the last of them, under a MAC.

Revision ID: 0013_audit_mac
Revises: 0012_expiry
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_audit_mac"
down_revision: str | None = "0012_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add ``audit_log.mac`` and create ``audit_mac_epochs``."""
    op.add_column("audit_log", sa.Column("mac", sa.String(64), nullable=True))
    op.create_table(
        "audit_mac_epochs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("after_id", _ID, nullable=False),
        sa.Column("after_hash", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_mac_epochs"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop the markers and the MACs (the chain of hashes stays verifiable)."""
    op.drop_table("audit_mac_epochs")
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy would lose AUTOINCREMENT.
    op.drop_column("audit_log", "mac")
