"""XEP-0484 FAST: the token seeds of each account's clients (docs/sasl2.md).

Revision ID: 0019_fast
Revises: 0015_phi
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_fast"
down_revision: str | None = "0018_pep"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``fast_tokens`` (removed with its account)."""
    op.create_table(
        "fast_tokens",
        sa.Column("owner", sa.String(1023), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("mechanism", sa.String(32), nullable=False),
        sa.Column("current_seed", sa.LargeBinary(), nullable=True),
        sa.Column("current_expires_at", _TS, nullable=True),
        sa.Column("current_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("new_seed", sa.LargeBinary(), nullable=True),
        sa.Column("new_expires_at", _TS, nullable=True),
        sa.Column("retired_seed", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"],
            ["accounts.login"],
            name="fk_fast_tokens_owner_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner", "agent_id", name="pk_fast_tokens"),
    )


def downgrade() -> None:
    """Drop it: every FAST token is gone, clients fall back to their password."""
    op.drop_table("fast_tokens")
