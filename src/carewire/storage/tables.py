"""The schema: :data:`metadata` and one :class:`~sqlalchemy.Table` per store.

The organisation directory's tables are in :mod:`.tables_directory` (registered
in the same metadata when this module is imported).

The tables here must match the Alembic revisions under ``migrations/``
(a test compares them). Everything owned by an account references
``accounts.login`` with ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

# The directory's, PEP's, push's and file sharing's tables live in their own modules (imported
# to register them).
import carewire.storage.tables_cluster
import carewire.storage.tables_directory
import carewire.storage.tables_federation
import carewire.storage.tables_ldap
import carewire.storage.tables_pep
import carewire.storage.tables_push
import carewire.storage.tables_scim
import carewire.storage.tables_upload  # noqa: F401
from carewire.storage.columns import UTCDateTime as UTCDateTime  # re-exported for the stores
from carewire.storage.schema_base import BIG_ID as _BIG_ID
from carewire.storage.schema_base import JID_LENGTH as JID_LENGTH
from carewire.storage.schema_base import LOGIN_LENGTH as LOGIN_LENGTH
from carewire.storage.schema_base import NAMING_CONVENTION as NAMING_CONVENTION
from carewire.storage.schema_base import metadata as metadata
from carewire.storage.schema_base import owner_column as _owner

accounts = Table(
    "accounts",
    metadata,
    Column("login", String(LOGIN_LENGTH), primary_key=True),
    Column("first_name", String(), nullable=False, server_default=""),
    Column("last_name", String(), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("last_failed_at", UTCDateTime(), nullable=True),
    Column("is_locked", Boolean, nullable=False, server_default=false()),
    Column("is_disabled", Boolean, nullable=False, server_default=false()),  # "Can Login" off
)

credentials = Table(
    "credentials",
    metadata,
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("mechanism", String(32), primary_key=True),
    Column("salt", LargeBinary, nullable=False),
    Column("iterations", Integer, nullable=False),
    Column("stored_key", LargeBinary, nullable=False),
    Column("server_key", LargeBinary, nullable=False),
)

roster_items = Table(
    "roster_items",
    metadata,
    _owner(primary_key=True),
    Column("contact", String(JID_LENGTH), primary_key=True),
    Column("name", String(), nullable=True),
    Column("subscription", String(4), nullable=False),
    Column("is_pending_out", Boolean, nullable=False),
    Column("is_approved", Boolean, nullable=False),
    Column("groups", Text, nullable=False),  # JSON list of group names
)

roster_versions = Table(
    "roster_versions",
    metadata,
    _owner(primary_key=True),
    Column("version", Integer, nullable=False),
)

pending_subscriptions = Table(
    "pending_subscriptions",
    metadata,
    _owner(primary_key=True),
    Column("contact", String(JID_LENGTH), primary_key=True),
    Column("stanza", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

offline_messages = Table(
    "offline_messages",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    _owner(index=True),
    Column("stanza", Text, nullable=False),
    Column("stamp", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sqlite_autoincrement=True,
)

held_messages = Table(
    "held_messages",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    _owner(index=True),
    Column("stanza", Text, nullable=False),
    Column("stamp", UTCDateTime(), nullable=False),
    Column("reason", String(32), nullable=False),
    sqlite_autoincrement=True,
)

busy_periods = Table(
    "busy_periods",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("until", UTCDateTime(), nullable=False),
    Column("note", String(255), nullable=False),
    UniqueConstraint("login", "kind", "ref", name="uq_busy_periods_login_kind_ref"),
    sqlite_autoincrement=True,
)

#: Messages still to expire (one row per tracked message, deleted once it expired).
message_expiry = Table(
    "message_expiry",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # chat or groupchat
    Column("sender", String(JID_LENGTH), nullable=True),  # bare JID; None: a system message
    Column("peer", String(JID_LENGTH), nullable=False),  # the recipient's or the room's bare JID
    Column("client_id", String(255), nullable=True),  # origin-id or id the sender gave it
)

vcards = Table(
    "vcards",
    metadata,
    _owner(primary_key=True),
    Column("xml", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

private_storage = Table(
    "private_storage",
    metadata,
    _owner(primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("xml", Text, nullable=False),
)

blocklist = Table(
    "blocklist",
    metadata,
    _owner(primary_key=True),
    Column("jid", String(JID_LENGTH), primary_key=True),
)

login_audit = Table(
    "login_audit",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("login", String(LOGIN_LENGTH), nullable=False, index=True),  # no FK: unknown logins too
    Column("remote_ip", String(64), nullable=False),
    Column("transport", String(32), nullable=False),
    Column("mechanism", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(255), nullable=False),
    sqlite_autoincrement=True,
)

# --- multi-user chat (XEP-0045): persistent rooms ---

muc_rooms = Table(
    "muc_rooms",
    metadata,
    Column("name", String(LOGIN_LENGTH), primary_key=True),  # the room JID's localpart
    Column("config", Text, nullable=False),  # JSON object
    Column("subject", Text, nullable=False),
    Column("subject_by", String(LOGIN_LENGTH), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

muc_affiliations = Table(
    "muc_affiliations",
    metadata,
    Column(
        "room",
        String(LOGIN_LENGTH),
        ForeignKey("muc_rooms.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("jid", String(JID_LENGTH), primary_key=True),  # bare JID (not only local accounts)
    Column("affiliation", String(16), nullable=False),
)

# --- the data platform's system tables (the datasets themselves are generated) ---

dataset_definitions = Table(
    "dataset_definitions",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("definition", Text, nullable=False),  # JSON, see datasets.definitions
    Column("is_builtin", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

rules = Table(
    "rules",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("dataset", String(63), nullable=False, index=True),
    Column("definition", Text, nullable=False),  # JSON, see rules.model
    Column("is_active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

rule_schedule = Table(
    "rule_schedule",
    metadata,
    Column("delivery_id", _BIG_ID, primary_key=True, autoincrement=False),
    Column("rule_id", _BIG_ID, ForeignKey("rules.id", ondelete="CASCADE"), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False, index=True),
    Column("payload", Text, nullable=False),  # JSON: the triggering change
)

adapters = Table(
    "adapters",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("reference_name", String(200), nullable=False, unique=True),
    Column("component", String(100), nullable=False),
    Column("is_enabled", Boolean, nullable=False),
    Column("required_datasets", Text, nullable=False),  # JSON: role -> dataset name
    Column("settings", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

# Control ids (MSH-10) of applied HL7 messages: a resent message is acknowledged, not applied.
hl7_messages = Table(
    "hl7_messages",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("adapter_id", _BIG_ID, ForeignKey("adapters.id", ondelete="CASCADE"), nullable=False),
    Column("sender", String(200), nullable=False),  # MSH-3|MSH-4
    Column("control_id", String(200), nullable=False),  # MSH-10
    Column("event", String(16), nullable=False),  # MSH-9.2
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    UniqueConstraint("adapter_id", "sender", "control_id", name="uq_hl7_messages_key"),
    sqlite_autoincrement=True,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("organisation_id", _BIG_ID, nullable=True, index=True),  # None: every organisation
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),  # None: never
    sqlite_autoincrement=True,
)

# --- the audit trail and the admin console ---

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", String(200), nullable=False, index=True),  # "console:alice", "api:gw", "cli"
    Column("channel", String(32), nullable=False),  # console, api, cli, xmpp, system
    Column("action", String(100), nullable=False, index=True),  # "login", "adapter.update", …
    Column("target", String(300), nullable=False),  # what was acted on (identifiers only)
    Column("outcome", String(16), nullable=False),  # success, failure
    Column("remote_ip", String(64), nullable=False),
    Column("details", Text, nullable=False),  # JSON: before/after, reason (no PHI)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("mac", String(64), nullable=True),  # HMAC-SHA-256 of hash; NULL before MACs began
    sqlite_autoincrement=True,
)

# Where entries authenticated with one audit key begin (see carewire.security.audit).
audit_mac_epochs = Table(
    "audit_mac_epochs",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False),
    Column("after_id", _BIG_ID, nullable=False),  # the last entry before the epoch (0: none)
    Column("after_hash", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("mac", String(64), nullable=False),
    sqlite_autoincrement=True,
)

console_users = Table(
    "console_users",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("email", String(320), nullable=True, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("role", String(32), nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("last_failed_at", UTCDateTime(), nullable=True),
    Column("is_locked", Boolean, nullable=False, server_default=false()),
    Column("must_change_password", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    Column("organisation_id", _BIG_ID, nullable=True, index=True),  # org administrators
    sqlite_autoincrement=True,
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token
    Column(
        "user_id",
        _BIG_ID,
        ForeignKey("console_users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("remote_ip", String(64), nullable=False),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the mailed token
    Column(
        "user_id",
        _BIG_ID,
        ForeignKey("console_users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)

#: XEP-0484 FAST tokens: one row per account and client (the SASL2 user-agent id),
#: with the 'current' and 'new' slots of XEP-0484 §7.1 and the last rotated-out
#: token (replay detection). Seeds only: tokens are derived with the server secret.
fast_tokens = Table(
    "fast_tokens",
    metadata,
    _owner(primary_key=True),
    Column("agent_id", String(128), primary_key=True),
    Column("mechanism", String(32), nullable=False),
    Column("current_seed", LargeBinary, nullable=True),
    Column("current_expires_at", UTCDateTime(), nullable=True),
    Column("current_count", Integer, nullable=False, server_default="0"),
    Column("new_seed", LargeBinary, nullable=True),
    Column("new_expires_at", UTCDateTime(), nullable=True),
    Column("retired_seed", LargeBinary, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

#: Tables in creation order (parents first).
ALL_TABLES = tuple(metadata.sorted_tables)

data_keys = Table(
    "data_keys",  # data keys and the index key, wrapped by the KEK (security/envelope.py)
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purpose", String(16), nullable=False),
    Column("kek_id", String(255), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("active_from", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

# Break-the-glass grants: a clinician off a patient's care team read the
# patient's details for a stated reason (carewire.security.phi_access). The
# reason is sealed by the store (it may name the patient).
break_glass = Table(
    "break_glass",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("login", String(LOGIN_LENGTH), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("remote_ip", String(64), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_break_glass_login_record", "login", "dataset", "record_id"),
    Index("ix_break_glass_granted_at", "granted_at"),
    sqlite_autoincrement=True,
)
