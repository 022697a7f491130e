"""Break-the-glass grants for reads of patients' details off the care team.

Revision ID: 0015_phi
Revises: 0011_encryption
Create Date: 2026-12-10

The PHI attributes of the datasets need no revision here: their sealed and
blind-index columns are created by the dataset registry at start, and their
plain values are encrypted then, by the running server, which holds the keys
(docs/phi.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_phi"
down_revision: str | None = "0011_encryption"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``break_glass``."""
    op.create_table(
        "break_glass",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("login", sa.String(1023), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("remote_ip", sa.String(64), nullable=False),
        sa.Column("granted_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_break_glass"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_break_glass_login_record", "break_glass", ["login", "dataset", "record_id"])
    op.create_index("ix_break_glass_granted_at", "break_glass", ["granted_at"])


def downgrade() -> None:
    """Drop the grants (the audit trail keeps its entries of them)."""
    op.drop_index("ix_break_glass_granted_at", table_name="break_glass")
    op.drop_index("ix_break_glass_login_record", table_name="break_glass")
    op.drop_table("break_glass")
