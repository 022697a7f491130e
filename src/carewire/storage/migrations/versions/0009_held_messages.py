"""Messages held for busy users (interruption control, docs/coverage.md).

Revision ID: 0009_held_messages
Revises: 0005_directory
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_held_messages"
down_revision: str | None = "0005_directory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LOGIN = sa.String(1023)


def upgrade() -> None:
    """Create ``held_messages``."""
    op.create_table(
        "held_messages",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("stanza", sa.Text(), nullable=False),
        sa.Column("stamp", _TS, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"],
            ["accounts.login"],
            name="fk_held_messages_owner_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_held_messages"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_held_messages_owner", "held_messages", ["owner"])


def downgrade() -> None:
    """Drop it (held messages are lost: release them first)."""
    op.drop_index("ix_held_messages_owner", table_name="held_messages")
    op.drop_table("held_messages")
