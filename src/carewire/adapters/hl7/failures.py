"""Error deliveries for HL7 messages that could not be applied (docs/rules.md, docs/hl7.md).

A rule firing that fails is a DELIVERIES record in ``Error`` with the reason in
``status_text``; an HL7 message that could not be applied is recorded the same
way, so it shows where an administrator looks for failures
(``carewire records list DELIVERIES --filter status:eq:Error``). ``rule`` is
empty, ``interface_name`` is the adapter instance and ``source`` names the
message (``HL7 ADT^A02 <MSH-10>``).
"""

from __future__ import annotations

from datetime import datetime

from carewire.datasets.model import Origin
from carewire.datasets.service import DatasetService
from carewire.rules.deliveries import DELIVERIES, DELIVERY_HISTORY
from carewire.rules.model import DeliveryStatus

_TEXT_LIMIT = 2000


async def record_failure(
    datasets: DatasetService,
    *,
    origin: Origin,
    source: str,
    text: str,
    received_at: datetime,
    now: datetime,
) -> int:
    """Write an Error delivery (and its history row) in its own transaction; returns its id."""
    elapsed = max(0, round((now - received_at).total_seconds() * 1000))
    async with datasets.batch(origin, "hl7_failure") as b:
        rec = await b.create(
            DELIVERIES,
            {
                "status": DeliveryStatus.ERROR.value,
                "triggered_at": received_at,
                "interface_name": origin.adapter,
                "source": source[:200],
                "status_text": text[:_TEXT_LIMIT],
                "processing_time": elapsed,
            },
        )
        await b.create(
            DELIVERY_HISTORY,
            {"status": DeliveryStatus.ERROR.value, "processing_time": elapsed, "delivery": rec.id},
        )
    return int(rec.id)
