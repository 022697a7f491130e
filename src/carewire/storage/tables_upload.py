"""File sharing's table (migration 0017_upload; docs/upload.md).

Part of the schema of :mod:`carewire.storage.tables`, registered in the shared
:data:`~carewire.storage.schema_base.metadata` when that module is imported.
The owner is not a foreign key to ``accounts``: a removed account's files
stay until they expire, so the sweep deletes the encrypted file on disk with
its row (a cascade would leave the file behind).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import LOGIN_LENGTH, metadata

uploads = Table(
    "uploads",
    metadata,
    Column("file_id", String(32), primary_key=True),  # names the file on disk
    Column("token_hash", String(64), nullable=False),  # SHA-256 of the URL's secret
    Column("owner", String(LOGIN_LENGTH), nullable=False),
    Column("filename", Text, nullable=False),  # sealed
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("slot_expires_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("sha256", Text, nullable=True),  # sealed, once stored
    Index("ix_uploads_token_hash", "token_hash", unique=True),
    Index("ix_uploads_owner_created_at", "owner", "created_at"),
    Index("ix_uploads_expires_at", "expires_at"),
    Index("ix_uploads_slot_expires_at", "slot_expires_at"),
)
