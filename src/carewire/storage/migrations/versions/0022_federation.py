"""Federation: the trusted-domain policy, allow-list, pinned peer certificates, stream status.

See docs/federation-admin.md.

Revision ID: 0022_federation
Revises: 0021_scim
Create Date: 2026-12-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_federation"
down_revision: str | None = "0021_scim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_DOMAIN = 1023
_ACTOR = 200


def upgrade() -> None:
    """Create the four ``federation_*`` tables; the policy starts open, dialback allowed."""
    policy = op.create_table(
        "federation_policy",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("certificates_only", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(_ACTOR), nullable=True),
        sa.Column("updated_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_federation_policy"),
    )
    op.bulk_insert(policy, [{"id": 1, "certificates_only": False, "version": 0}])
    op.create_table(
        "federation_allowed_domains",
        sa.Column("domain", sa.String(_DOMAIN), nullable=False),
        sa.Column("added_by", sa.String(_ACTOR), nullable=False),
        sa.Column("added_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("domain", name="pk_federation_allowed_domains"),
    )
    op.create_table(
        "federation_pins",
        sa.Column("domain", sa.String(_DOMAIN), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("not_after", _TS, nullable=False),
        sa.Column("uploaded_by", sa.String(_ACTOR), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("domain", "sha256", name="pk_federation_pins"),
    )
    op.create_table(
        "federation_status",
        sa.Column("domain", sa.String(_DOMAIN), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("auth", sa.String(16), nullable=True),
        sa.Column("tls_version", sa.String(16), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("certificate_not_after", _TS, nullable=True),
        sa.Column("since", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", _TS, nullable=True),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("stanzas_in", sa.BigInteger(), nullable=False),
        sa.Column("stanzas_out", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("domain", "direction", "node", name="pk_federation_status"),
    )


def downgrade() -> None:
    """Drop them: the allow-list and pinned certificates are forgotten (federation opens)."""
    op.drop_table("federation_status")
    op.drop_table("federation_pins")
    op.drop_table("federation_allowed_domains")
    op.drop_table("federation_policy")
