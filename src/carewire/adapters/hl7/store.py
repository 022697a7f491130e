"""What the HL7 adapters need from storage: the control ids already applied.

Implemented by :mod:`carewire.storage.hl7` (table ``hl7_messages``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class ControlIdStore(Protocol):
    """Messages applied, by adapter instance, sender and MSH-10, so a resend is not applied twice.

    Both methods join the caller's open transaction (the one writing the message's
    changes), so a control id is remembered exactly when the changes commit.
    """

    async def is_seen(self, adapter_id: int, sender: str, control_id: str) -> bool:
        """Whether this sender's message ``control_id`` was applied by this adapter."""

    async def remember(
        self, adapter_id: int, sender: str, control_id: str, *, event: str, at: datetime
    ) -> None:
        """Record an applied message.

        Raises:
            ConflictError: It was recorded already (a resend raced the first copy).
        """

    async def remember_many(
        self, adapter_id: int, items: Sequence[tuple[str, str, str]], *, at: datetime
    ) -> None:
        """Record several applied messages, each (sender, control id, event), in one statement.

        Raises:
            ConflictError: One of them was recorded already.
        """

    async def purge(self, before: datetime) -> int:
        """Forget messages received before ``before``; returns how many."""
