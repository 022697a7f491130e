"""PEP nodes and their persistent items (migration 0018_pep; XEP-0163, XEP-0223).

Part of the schema of :mod:`carewire.storage.tables`, which imports this module so
the tables join the shared :data:`~carewire.storage.schema_base.metadata`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import BIG_ID, JID_LENGTH, metadata, owner_column

#: XEP-0060 node ids and item ids are free strings; these bound what we keep.
NODE_LENGTH = 1023
ITEM_ID_LENGTH = 1023

# One row per node of an account's PEP service; ``config`` is the node
# configuration as JSON (pubsub#… field → value), read by features/pep/model.py.
pep_nodes = Table(
    "pep_nodes",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    owner_column(),
    Column("node", String(NODE_LENGTH), nullable=False),
    Column("config", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("owner", "node"),
    sqlite_autoincrement=True,
)

# The items of a node; ``seq`` orders them (the highest is the last published). ``payload``
# is sealed (storage/pep.py); the surrogate ``id`` lets the plaintext sealing pass walk it.
pep_items = Table(
    "pep_items",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("node_id", BIG_ID, ForeignKey("pep_nodes.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", String(ITEM_ID_LENGTH), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("publisher", String(JID_LENGTH), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    UniqueConstraint("node_id", "item_id"),
    Index("ix_pep_items_node_seq", "node_id", "seq"),
    sqlite_autoincrement=True,
)
