"""Control ids of applied HL7 messages, so that a resent message is not applied twice.

Revision ID: 0006_hl7
Revises: 0009_held_messages
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_hl7"
down_revision: str | None = "0009_held_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``hl7_messages``."""
    op.create_table(
        "hl7_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("adapter_id", _ID, nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("control_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_id"],
            ["adapters.id"],
            name="fk_hl7_messages_adapter_id_adapters",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_hl7_messages"),
        sa.UniqueConstraint("adapter_id", "sender", "control_id", name="uq_hl7_messages_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hl7_messages_received_at", "hl7_messages", ["received_at"])


def downgrade() -> None:
    """Drop ``hl7_messages``."""
    op.drop_index("ix_hl7_messages_received_at", table_name="hl7_messages")
    op.drop_table("hl7_messages")
