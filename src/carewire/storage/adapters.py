"""Adapter instances (table ``adapters``)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.adapters.base import AdapterConfig
from carewire.errors import ConflictError
from carewire.storage.database import Database
from carewire.storage.tables import adapters


class SqlAdapterStore:
    """Adapter instances on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[AdapterConfig]:
        """Every instance, by id."""
        async with self._db.read("load_adapters") as conn:
            rows = (await conn.execute(select(adapters).order_by(adapters.c.id))).all()
        return [
            AdapterConfig(
                id=int(r.id),
                reference_name=r.reference_name,
                component=r.component,
                is_enabled=bool(r.is_enabled),
                required_datasets=json.loads(r.required_datasets),
                settings=json.loads(r.settings),
            )
            for r in rows
        ]

    def _values(self, config: AdapterConfig) -> dict[str, object]:
        return {
            "reference_name": config.reference_name,
            "component": config.component,
            "is_enabled": config.is_enabled,
            "required_datasets": json.dumps(dict(config.required_datasets), sort_keys=True),
            "settings": json.dumps(dict(config.settings), sort_keys=True),
        }

    async def insert(self, config: AdapterConfig, now: datetime) -> AdapterConfig:
        """Save a new instance; returns it with its id."""
        try:
            async with self._db.transaction("insert_adapter") as txn:
                result = await txn.conn.execute(
                    insert(adapters).values(**self._values(config), created_at=now, updated_at=now)
                )
        except IntegrityError:
            raise _taken(config.reference_name) from None
        return replace(config, id=_pk(result.inserted_primary_key))

    async def update(self, config: AdapterConfig, now: datetime) -> None:
        """Save changes (by id)."""
        try:
            async with self._db.transaction("update_adapter") as txn:
                await txn.conn.execute(
                    update(adapters)
                    .where(adapters.c.id == config.id)
                    .values(**self._values(config), updated_at=now)
                )
        except IntegrityError:
            raise _taken(config.reference_name) from None

    async def delete(self, adapter_id: int) -> None:
        """Remove an instance."""
        async with self._db.transaction("delete_adapter") as txn:
            await txn.conn.execute(delete(adapters).where(adapters.c.id == adapter_id))


def _taken(name: str) -> ConflictError:
    return ConflictError(f"an adapter named {name!r} already exists")


def _pk(key: object) -> int:
    assert key is not None
    return int(key[0])  # type: ignore[index]
