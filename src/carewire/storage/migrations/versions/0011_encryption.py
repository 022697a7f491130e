"""Encryption at rest: the wrapped data keys.

Revision ID: 0011_encryption
Revises: 0014_hardening
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_encryption"
down_revision: str | None = "0014_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``data_keys`` (values are encrypted by the running server, not here)."""
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(255), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("active_from", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_data_keys"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop the keys.

    Values encrypted under them can no longer be read after this: a
    downgrade loses every encrypted message body (docs/encryption.md).
    """
    op.drop_table("data_keys")
