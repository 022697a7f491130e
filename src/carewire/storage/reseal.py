"""Seal values written in plaintext before encryption at rest was enabled (or while it was off).

Each table is walked in batches of :data:`BATCH` rows whose value lacks the
``cw1:`` prefix; each batch is one transaction, so the pass may be stopped at
any point and resumed by running it again (sealed rows are skipped). On
SQLite ``secure_delete`` overwrites the freed plaintext, and a final WAL
checkpoint truncates the log that still held the old pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import bindparam, column, func, select, table, text, update
from sqlalchemy.sql import TableClause

from carewire.security.envelope import TEXT_PREFIX, Keyring
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.dataset_tables import ENCRYPTED_ATTRIBUTES, table_name
from carewire.storage.held import stanza_aad as held_aad
from carewire.storage.muc import value_aad as muc_aad
from carewire.storage.offline import stanza_aad as offline_aad
from carewire.storage.pep import payload_aad as pep_aad

log = logging.getLogger(__name__)

#: Rows per transaction.
BATCH = 500


@dataclass(frozen=True, slots=True)
class _Target:
    """One text column to seal: its table, key column, and the associated data per row."""

    name: str
    table: TableClause
    key: str
    value: str
    aad: Callable[[dict[str, object]], bytes]
    extra: tuple[str, ...] = ()


def _room_aad(col: str, row: dict[str, object]) -> bytes:
    return muc_aad(col, str(row["name"]))


def _fixed_aad(aad: bytes, _row: dict[str, object]) -> bytes:
    return aad


def _targets(existing: set[str]) -> list[_Target]:
    out = [
        _Target(
            "offline_messages.stanza",
            table("offline_messages", column("id"), column("owner"), column("stanza")),
            "id",
            "stanza",
            lambda r: offline_aad(str(r["owner"])),
            ("owner",),
        ),
        _Target(
            "held_messages.stanza",
            table("held_messages", column("id"), column("owner"), column("stanza")),
            "id",
            "stanza",
            lambda r: held_aad(str(r["owner"])),
            ("owner",),
        ),
    ]
    out.append(
        _Target(
            "pep_items.payload",
            table(
                "pep_items", column("id"), column("node_id"), column("item_id"), column("payload")
            ),
            "id",
            "payload",
            lambda r: pep_aad(int(str(r["node_id"])), str(r["item_id"])),
            ("node_id", "item_id"),
        )
    )
    for col in ("config", "subject"):
        out.append(
            _Target(
                f"muc_rooms.{col}",
                table("muc_rooms", column("name"), column(col)),
                "name",
                col,
                partial(_room_aad, col),
            )
        )
    for dataset, attribute in sorted(ENCRYPTED_ATTRIBUTES):
        name = table_name(dataset)
        if name in existing:
            aad = f"{dataset}.{attribute}".encode()
            out.append(
                _Target(
                    f"{dataset}.{attribute}",
                    table(name, column("id"), column(attribute)),
                    "id",
                    attribute,
                    partial(_fixed_aad, aad),
                )
            )
    return out


async def _seal_batch(db: Database, keyring: Keyring, t: _Target) -> int:
    key, value = t.table.c[t.key], t.table.c[t.value]
    cols = [key, value, *(t.table.c[c] for c in t.extra)]
    pending = (
        select(*cols)
        .where(value.is_not(None), value != "", ~value.startswith(TEXT_PREFIX, autoescape=True))
        .limit(BATCH)
    )
    stmt = update(t.table).where(key == bindparam("k")).values({t.value: bindparam("v")})
    async with db.transaction("seal_plaintext") as txn:
        rows = (await txn.conn.execute(pending)).mappings().all()
        params = [
            {"k": r[t.key], "v": keyring.seal_text(str(r[t.value]), aad=t.aad(dict(r)))}
            for r in rows
        ]
        if params:
            await txn.conn.execute(stmt, params)
    return len(params)


async def seal_plaintext(db: Database, keyring: Keyring) -> dict[str, int]:
    """Seal every plaintext message value; returns how many were sealed per column.

    Nothing is done while the keyring writes plaintext (``encrypt_new`` off).
    """
    if not keyring.encrypt_new:
        return {}
    async with db.read("list_tables") as conn:
        existing = set(await conn.run_sync(lambda c: dialects.table_names(c)))
    counts: dict[str, int] = {}
    for t in _targets(existing):
        total = 0
        while n := await _seal_batch(db, keyring, t):
            total += n
        if total:
            counts[t.name] = total
            log.info("sealed %d plaintext values of %s", total, t.name)
    if counts and db.dialect == dialects.SQLITE:
        async with db.transaction("checkpoint") as txn:
            await txn.conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return counts


async def count_values(db: Database) -> dict[str, tuple[int, int]]:
    """Per encrypted column: how many values are sealed and how many are still plaintext."""
    async with db.read("list_tables") as conn:
        existing = set(await conn.run_sync(lambda c: dialects.table_names(c)))
        out: dict[str, tuple[int, int]] = {}
        for t in _targets(existing):
            value = t.table.c[t.value]
            sealed = value.startswith(TEXT_PREFIX, autoescape=True)
            present = value.is_not(None) & (value != "")
            n_sealed = (await conn.execute(select(func.count()).where(present, sealed))).scalar()
            n_plain = (await conn.execute(select(func.count()).where(present, ~sealed))).scalar()
            out[t.name] = (int(n_sealed or 0), int(n_plain or 0))
    return out
