"""Delivery tracking: every rule firing is a DELIVERIES record with a DELIVERY_HISTORY trail.

Status moves Queued → Processing → (Pending →) Delivered, or to Error with
the reason in ``status_text`` (or Cancelled when a deferred firing's
conditions no longer hold). Each transition writes the DELIVERIES update and
one DELIVERY_HISTORY row in the same transaction, through the dataset
service like every other dataset write.
"""

from __future__ import annotations

from datetime import datetime

from carewire.clock import Clock
from carewire.datasets.model import Origin, RecordChanged, RecordId
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.rules.model import DeliveryStatus, Rule

DELIVERIES = "DELIVERIES"
DELIVERY_HISTORY = "DELIVERY_HISTORY"

#: Final states: nothing more happens to the delivery.
FINAL = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.ERROR, DeliveryStatus.CANCELLED})

_TEXT_LIMIT = 2000


class DeliveryTracker:
    """Writes delivery records and their history."""

    def __init__(self, datasets: DatasetService, clock: Clock) -> None:
        self._datasets = datasets
        self._clock = clock

    def _origin(self, cause: Origin) -> Origin:
        return Origin(adapter=None, actor="rules", depth=cause.depth + 1)

    async def queued(
        self,
        rule: Rule,
        event: RecordChanged,
        *,
        status: DeliveryStatus = DeliveryStatus.QUEUED,
        text: str = "",
    ) -> int:
        """Record a firing (Queued, or directly Error for a refused one); returns its id."""
        now = self._clock.now()
        async with self._datasets.batch(self._origin(event.origin), "queue_delivery") as b:
            rec = await b.create(
                DELIVERIES,
                {
                    "status": status.value,
                    "triggered_at": event.at,
                    "interface_name": rule.adapter,
                    "rule": rule.name,
                    "source": f"{event.dataset}/{event.record_id}",
                    "status_text": text[:_TEXT_LIMIT] or None,
                    "processing_time": _ms(event.at, now),
                },
            )
            await b.create(
                DELIVERY_HISTORY,
                {"status": status.value, "processing_time": _ms(event.at, now), "delivery": rec.id},
            )
        return int(rec.id)

    async def move(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        triggered_at: datetime,
        cause: Origin,
        text: str = "",
    ) -> None:
        """Move a delivery to ``status`` (with its history row)."""
        now = self._clock.now()
        changes: dict[str, object] = {
            "status": status.value,
            "processing_time": _ms(triggered_at, now),
        }
        if text or status in FINAL:
            changes["status_text"] = text[:_TEXT_LIMIT] or None
        if status is DeliveryStatus.DELIVERED:
            changes["delivery_date"] = now
        async with self._datasets.batch(self._origin(cause), "move_delivery") as b:
            await b.update(DELIVERIES, delivery_id, changes)
            await b.create(
                DELIVERY_HISTORY,
                {
                    "status": status.value,
                    "processing_time": _ms(triggered_at, now),
                    "delivery": delivery_id,
                },
            )

    async def unfinished(self) -> list[tuple[int, datetime]]:
        """(id, triggered_at) of deliveries still Queued or Processing."""
        out: list[tuple[int, datetime]] = []
        offset = 0
        while True:
            page = await self._datasets.query(
                DELIVERIES,
                Query(
                    filters=(
                        Filter(
                            field="status",
                            op=FilterOp.IN,
                            value=[DeliveryStatus.QUEUED.value, DeliveryStatus.PROCESSING.value],
                        ),
                    ),
                    offset=offset,
                    limit=1000,
                ),
            )
            for rec in page.records:
                at = rec.get("triggered_at")
                assert isinstance(at, datetime)
                out.append((int(rec.id), at))
            offset += len(page.records)
            if offset >= page.total or not page.records:
                return out

    async def get_status(self, delivery_id: int) -> str | None:
        """The current status of a delivery."""
        rec = await self._datasets.store.get(
            self._datasets.registry.get(DELIVERIES), RecordId(delivery_id)
        )
        return None if rec is None else str(rec.get("status"))


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))
