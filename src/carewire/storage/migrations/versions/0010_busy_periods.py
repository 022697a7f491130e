"""Busy periods: a timed Do Not Disturb and unanswered urgent alerts survive a restart.

Revision ID: 0010_busy_periods
Revises: 0006_hl7
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_busy_periods"
down_revision: str | None = "0006_hl7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``busy_periods``."""
    op.create_table(
        "busy_periods",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("login", sa.String(1023), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("until", _TS, nullable=False),
        sa.Column("note", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["login"],
            ["accounts.login"],
            name="fk_busy_periods_login_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_busy_periods"),
        sa.UniqueConstraint("login", "kind", "ref", name="uq_busy_periods_login_kind_ref"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop it (after a downgrade nobody is busy at start, as before)."""
    op.drop_table("busy_periods")
