"""Push notifications: the app server's registrations, XEP-0357 enables, tracked attempts.

Revision ID: 0016_push
Revises: 0015_phi
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_push"
down_revision: str | None = "0015_phi"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``push_registrations``, ``push_enables`` and ``push_attempts``."""
    op.create_table(
        "push_registrations",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(1023), nullable=False),
        sa.Column("device", sa.String(3071), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"],
            ["accounts.login"],
            name="fk_push_registrations_owner_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_push_registrations"),
        sa.UniqueConstraint("node", name="uq_push_registrations_node"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_push_registrations_owner", "push_registrations", ["owner"])
    op.create_table(
        "push_enables",
        sa.Column("owner", sa.String(1023), nullable=False),
        sa.Column("jid", sa.String(3071), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(1023), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"], ["accounts.login"], name="fk_push_enables_owner_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("owner", "jid", "node", name="pk_push_enables"),
    )
    op.create_table(
        "push_attempts",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("login", sa.String(1023), nullable=False),
        sa.Column("device", sa.String(3071), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("opaque_id", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_attempts"),
        sa.UniqueConstraint("opaque_id", name="uq_push_attempts_opaque_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_push_attempts_login_created", "push_attempts", ["login", "created_at"])
    op.create_index("ix_push_attempts_state", "push_attempts", ["state"])


def downgrade() -> None:
    """Drop the three tables (registered devices must register again)."""
    op.drop_index("ix_push_attempts_state", table_name="push_attempts")
    op.drop_index("ix_push_attempts_login_created", table_name="push_attempts")
    op.drop_table("push_attempts")
    op.drop_table("push_enables")
    op.drop_index("ix_push_registrations_owner", table_name="push_registrations")
    op.drop_table("push_registrations")
