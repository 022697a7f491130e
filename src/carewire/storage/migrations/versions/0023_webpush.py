"""Web Push: the browsers' push subscriptions, sealed, one row per endpoint.

See docs/push.md#web-push.

Revision ID: 0023_webpush
Revises: 0022_federation
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_webpush"
down_revision: str | None = "0022_federation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``webpush_subscriptions``."""
    op.create_table(
        "webpush_subscriptions",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("owner", sa.String(1023), nullable=False),
        sa.Column("endpoint_index", sa.String(64), nullable=False),
        sa.Column("subscription", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"],
            ["accounts.login"],
            name="fk_webpush_subscriptions_owner_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webpush_subscriptions"),
        sa.UniqueConstraint("endpoint_index", name="uq_webpush_subscriptions_endpoint_index"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webpush_subscriptions_owner", "webpush_subscriptions", ["owner"])


def downgrade() -> None:
    """Drop the table (browsers must subscribe again)."""
    op.drop_index("ix_webpush_subscriptions_owner", table_name="webpush_subscriptions")
    op.drop_table("webpush_subscriptions")
