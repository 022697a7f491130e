"""What the adapter manager needs from storage (see :mod:`carewire.storage.adapters`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from carewire.adapters.base import AdapterConfig


class AdapterStore(Protocol):
    """Saved adapter instances."""

    async def all(self) -> list[AdapterConfig]:
        """Every instance."""

    async def insert(self, config: AdapterConfig, now: datetime) -> AdapterConfig:
        """Save a new instance; returns it with its id.

        Raises:
            ConflictError: The reference name is taken.
        """

    async def update(self, config: AdapterConfig, now: datetime) -> None:
        """Save changes (by id).

        Raises:
            ConflictError: The new reference name is taken.
        """

    async def delete(self, adapter_id: int) -> None:
        """Remove an instance."""
