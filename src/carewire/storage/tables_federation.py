"""Federation's trusted domains and per-domain status (migration 0022_federation).

Part of the schema of :mod:`carewire.storage.tables`, which imports this module so
the tables join the shared :data:`~carewire.storage.schema_base.metadata`
(docs/federation-admin.md).

- ``federation_policy``: one row (``id = 1``): the "certificates only" switch and
  ``version``, a counter every change of the policy, the allow-list or the pins
  increments, so that each node of a cluster notices a change with one tiny read.
- ``federation_allowed_domains``: the partner domains (empty: open to any domain).
- ``federation_pins``: peer certificates uploaded per remote domain (their SHA-256).
- ``federation_status``: what each node's streams last reported, one row per
  (remote domain, direction, node); written behind by the status board.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import metadata

#: A domain name: 253 characters in A-labels; U-labels may take more bytes than that.
DOMAIN_LENGTH = 1023
#: Who made a change (``console:alice``, ``api:token``, ``cli:root``).
ACTOR_LENGTH = 200

federation_policy = Table(
    "federation_policy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("certificates_only", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_by", String(ACTOR_LENGTH), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=True),
)

federation_allowed_domains = Table(
    "federation_allowed_domains",
    metadata,
    Column("domain", String(DOMAIN_LENGTH), primary_key=True),
    Column("added_by", String(ACTOR_LENGTH), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
)

federation_pins = Table(
    "federation_pins",
    metadata,
    Column("domain", String(DOMAIN_LENGTH), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the DER certificate, lowercase hex
    Column("pem", Text, nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("not_after", UTCDateTime(), nullable=False),
    Column("uploaded_by", String(ACTOR_LENGTH), nullable=False),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("domain", "sha256"),
)

federation_status = Table(
    "federation_status",
    metadata,
    Column("domain", String(DOMAIN_LENGTH), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("node", String(200), nullable=False),
    Column("connected", Boolean, nullable=False),
    Column("auth", String(16), nullable=True),  # certificate | dialback
    Column("tls_version", String(16), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("certificate_not_after", UTCDateTime(), nullable=True),
    Column("since", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
    Column("queued", Integer, nullable=False),
    Column("stanzas_in", BigInteger, nullable=False),
    Column("stanzas_out", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("domain", "direction", "node"),
)
