"""The ``/deliveries`` resource: every rule firing and the progression of its status.

Deliveries are DELIVERIES records and their DELIVERY_HISTORY rows (see
:mod:`carewire.rules.deliveries`), read through the
:class:`~carewire.datasets.service.DatasetService` like any other records;
this resource adds the filters a delivery log needs and returns the newest
first. It is read-only: the rules engine writes deliveries.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, JsonValue

from carewire.datasets import query as q
from carewire.datasets.model import Record
from carewire.datasets.values import to_json
from carewire.rules.deliveries import DELIVERIES, DELIVERY_HISTORY
from carewire.rules.model import DeliveryStatus
from carewire.web.api.deps import Services, authorize

router = APIRouter(prefix="/deliveries", tags=["deliveries"], dependencies=[Depends(authorize)])

_NEWEST_FIRST = (
    q.Sort(field="triggered_at", is_descending=True),
    q.Sort(field="id", is_descending=True),
)


class RecordOut(BaseModel):
    """A DELIVERIES or DELIVERY_HISTORY record."""

    id: int
    values: dict[str, JsonValue]


class DeliveryPage(BaseModel):
    """One page of deliveries, newest first."""

    total: int = Field(description="How many deliveries match in all.")
    offset: int
    limit: int
    deliveries: list[RecordOut]


class DeliveryOut(RecordOut):
    """A delivery and its status history, oldest first."""

    history: list[RecordOut]


def _out(rec: Record) -> RecordOut:
    return RecordOut(
        id=rec.id, values={k: cast(JsonValue, to_json(v)) for k, v in rec.values.items()}
    )


def _filters(
    *,
    status: DeliveryStatus | None,
    rule: str | None,
    interface_name: str | None,
    since: str | None,
    until: str | None,
) -> tuple[q.Filter, ...]:
    eq = {
        "status": None if status is None else status.value,
        "rule": rule,
        "interface_name": interface_name,
    }
    filters = [q.Filter(field=k, op=q.FilterOp.EQ, value=v) for k, v in eq.items() if v is not None]
    if since is not None:
        filters.append(q.Filter(field="triggered_at", op=q.FilterOp.GE, value=since))
    if until is not None:
        filters.append(q.Filter(field="triggered_at", op=q.FilterOp.LT, value=until))
    return tuple(filters)


_TIME = "An ISO 8601 date and time with a time zone (`2026-01-31T08:00:00Z`)."


@router.get("", summary="List deliveries")
async def list_deliveries(
    *,
    services: Services,
    status: DeliveryStatus | None = None,
    rule: Annotated[str | None, Query(description="The rule's name.")] = None,
    interface_name: Annotated[
        str | None, Query(description="The adapter's reference name.")
    ] = None,
    since: Annotated[str | None, Query(description=f"Triggered at or after. {_TIME}")] = None,
    until: Annotated[str | None, Query(description=f"Triggered before. {_TIME}")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=q.MAX_LIMIT)] = 100,
) -> DeliveryPage:
    """Deliveries matching every filter, newest first, one page at a time."""
    filters = _filters(
        status=status, rule=rule, interface_name=interface_name, since=since, until=until
    )
    query = q.Query(filters=filters, sort=_NEWEST_FIRST, offset=offset, limit=limit)
    page = await services.datasets.query(DELIVERIES, query)
    return DeliveryPage(
        total=page.total,
        offset=offset,
        limit=limit,
        deliveries=[_out(r) for r in page.records],
    )


@router.get("/{delivery_id}", summary="Read a delivery")
async def get_delivery(delivery_id: int, services: Services) -> DeliveryOut:
    """One delivery and every status it went through, in order."""
    delivery = _out(await services.datasets.get(DELIVERIES, delivery_id))
    history: list[RecordOut] = []
    while True:
        page = await services.datasets.query(
            DELIVERY_HISTORY,
            q.Query(
                filters=(q.Filter(field="delivery", op=q.FilterOp.EQ, value=delivery_id),),
                sort=(q.Sort(field="id"),),
                offset=len(history),
                limit=q.MAX_LIMIT,
            ),
        )
        history += [_out(r) for r in page.records]
        if not page.records or len(history) >= page.total:
            break
    return DeliveryOut(id=delivery.id, values=delivery.values, history=history)
