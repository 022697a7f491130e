"""API tokens may expire: ``api_tokens.expires_at`` (empty: the token never expires).

Revision ID: 0014_hardening
Revises: 0013_audit_mac
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_hardening"
down_revision: str | None = "0013_audit_mac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``api_tokens.expires_at`` (existing tokens keep working: it stays empty)."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop it (tokens with an expiry then never expire: revoke them first if that matters)."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
