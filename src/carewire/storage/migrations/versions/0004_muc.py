"""Persistent multi-user chat rooms (XEP-0045) and their affiliations.

Revision ID: 0004_muc
Revises: 0003_audit_console
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_muc"
down_revision: str | None = "0003_audit_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_LOGIN = 1023
_JID = 3071


def upgrade() -> None:
    """Create the rooms and affiliations tables."""
    op.create_table(
        "muc_rooms",
        sa.Column("name", sa.String(_LOGIN), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("subject_by", sa.String(_LOGIN), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_muc_rooms"),
    )
    op.create_table(
        "muc_affiliations",
        sa.Column("room", sa.String(_LOGIN), nullable=False),
        sa.Column("jid", sa.String(_JID), nullable=False),
        sa.Column("affiliation", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["room"],
            ["muc_rooms.name"],
            name="fk_muc_affiliations_room_muc_rooms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room", "jid", name="pk_muc_affiliations"),
    )


def downgrade() -> None:
    """Drop them (children first)."""
    op.drop_table("muc_affiliations")
    op.drop_table("muc_rooms")
