"""The push tables (docs/push.md): registrations, enables, attempts, Web Push subscriptions.

Registered in the shared metadata when :mod:`.tables` imports this module.
Tokens and secrets are sealed by the store (``cw1:`` values); the secret the
app server checks is kept only as a SHA-256 hash (it is 256 random bits).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import BIG_ID, JID_LENGTH, LOGIN_LENGTH, metadata, owner_column

# The app server's side: one row per device token registered with it.
push_registrations = Table(
    "push_registrations",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("node", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    owner_column(index=True),
    Column("device", String(JID_LENGTH), nullable=False),  # DEVICES name: login/resource
    Column("service", String(8), nullable=False),
    Column("token", Text, nullable=False),  # sealed
    Column("topic", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("node", name="uq_push_registrations_node"),
    sqlite_autoincrement=True,
)

# The XMPP server's side (XEP-0357 §5): what each account enabled, from which resource.
push_enables = Table(
    "push_enables",
    metadata,
    owner_column(primary_key=True),
    Column("jid", String(JID_LENGTH), primary_key=True),
    Column("node", String(64), primary_key=True),
    Column("resource", String(LOGIN_LENGTH), nullable=False),
    Column("secret", Text, nullable=False),  # sealed; sent in publish-options
    Column("enabled_at", UTCDateTime(), nullable=False),
)

# Every push, tracked like a delivery.
push_attempts = Table(
    "push_attempts",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("registration_id", Integer, nullable=True),  # no FK: attempts outlive registrations
    Column("login", String(LOGIN_LENGTH), nullable=False),
    Column("device", String(JID_LENGTH), nullable=False),
    Column("service", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("opaque_id", String(64), nullable=False),
    Column("provider_id", String(255), nullable=False),
    Column("status", Integer, nullable=True),
    Column("reason", String(128), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_push_attempts_login_created", "login", "created_at"),
    Index("ix_push_attempts_state", "state"),
    UniqueConstraint("opaque_id", name="uq_push_attempts_opaque_id"),
    sqlite_autoincrement=True,
)

# Web Push (docs/push.md#web-push): one row per browser subscription. The endpoint and the
# keys are sealed together (``subscription``, JSON); the endpoint's blind index finds a row
# again (a browser subscribing anew, another clinician signing in on the same browser).
webpush_subscriptions = Table(
    "webpush_subscriptions",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    owner_column(index=True),
    Column("endpoint_index", String(64), nullable=False),
    Column("subscription", Text, nullable=False),  # sealed
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("endpoint_index", name="uq_webpush_subscriptions_endpoint_index"),
    sqlite_autoincrement=True,
)
