"""The ``/datasets/{name}/records`` resource: query, read and write records.

Every write goes through :class:`~carewire.datasets.service.DatasetService`
(validation, one transaction, ``RecordChanged`` after commit) on behalf of
``api:<token name>``, and recorded in the audit trail by dataset and record id
only (never values). Values are JSON: Date and Date/Time in ISO 8601, to-one
links as a record id or an object of the target's key fields, m:n links as a
list of those.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from carewire.datasets import query as q
from carewire.datasets.model import Dataset, Record
from carewire.datasets.values import to_json
from carewire.security.phi_access import holds_phi, read_details, read_target
from carewire.web.api.deps import Audit, CurrentToken, Services, authorize, origin_of

router = APIRouter(
    prefix="/datasets/{name}/records", tags=["records"], dependencies=[Depends(authorize)]
)

_VALUES_EXAMPLE = {"bed_number": "A", "room": {"room_number": "101", "facility": {"name": "Main"}}}


class RecordOut(BaseModel):
    """One record."""

    id: int
    values: dict[str, JsonValue] = Field(
        description="Attribute values, and to-one links as record ids."
    )


class RecordPage(BaseModel):
    """One page of a query."""

    total: int = Field(description="How many records match in all.")
    offset: int
    limit: int
    records: list[RecordOut]


class RecordBody(BaseModel):
    """Values to write: a create, an upsert or an update's changes."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, JsonValue] = Field(examples=[_VALUES_EXAMPLE])


class LinkTargets(BaseModel):
    """Records to link or unlink: ids, or objects of the target's key fields."""

    model_config = ConfigDict(extra="forbid")

    targets: list[JsonValue] = Field(examples=[[3, {"name": "ICU"}]])


async def _audit(audit: Audit, action: str, dataset: str, record_id: int, **extra: str) -> None:
    """Record a write by dataset and id: the values never reach the trail."""
    details: dict[str, object] = {"dataset": dataset, "id": record_id, **extra}
    await audit(action, f"{dataset}/{record_id}", details=details)


def _out(rec: Record) -> RecordOut:
    return RecordOut(
        id=rec.id, values={k: cast(JsonValue, to_json(v)) for k, v in rec.values.items()}
    )


@router.get("", summary="Query records")
async def list_records(
    *,
    name: str,
    services: Services,
    audit: Audit,
    filters: Annotated[
        list[str],
        Query(
            alias="filter",
            description="`field:op:value`, repeatable; ops: eq ne lt le gt ge in (`a,b`) "
            "contains empty not_empty; `field=value` means eq",
        ),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    sort: Annotated[str, Query(description="Fields, comma-separated; `-` sorts descending")] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=q.MAX_LIMIT)] = 100,
) -> RecordPage:
    """Records matching every filter, sorted, one page at a time."""
    query = q.Query(
        filters=tuple(q.parse_filter(f) for f in filters),
        sort=q.parse_sort(sort),
        offset=offset,
        limit=limit,
    )
    page = await services.datasets.query(name, query)
    await _audit_read(audit, services.registry.get(name), [r.id for r in page.records])
    return RecordPage(
        total=page.total, offset=offset, limit=limit, records=[_out(r) for r in page.records]
    )


@router.get("/{record_id}", summary="Read a record")
async def get_record(name: str, record_id: int, services: Services, audit: Audit) -> RecordOut:
    """One record by id."""
    rec = await services.datasets.get(name, record_id)
    await _audit_read(audit, services.registry.get(name), [rec.id])
    return _out(rec)


async def _audit_read(audit: Audit, ds: Dataset, ids: list[int]) -> None:
    """One ``phi.read`` entry for a request that read PHI (dataset and ids, never values)."""
    if holds_phi(ds):
        await audit("phi.read", read_target(ds, ids), details=read_details(ds, ids))


@router.post("", status_code=201, summary="Create a record")
async def create_record(
    name: str, body: RecordBody, services: Services, token: CurrentToken, audit: Audit
) -> RecordOut:
    """Create a record; key fields must be unique."""
    rec = await services.datasets.create(name, body.values, origin=origin_of(token))
    await _audit(audit, "record.create", rec.dataset, rec.id)
    return _out(rec)


@router.put("", summary="Create or update a record by its key")
async def upsert_record(
    name: str, body: RecordBody, services: Services, token: CurrentToken, audit: Audit
) -> RecordOut:
    """Update the record with the same key fields, or create it."""
    rec = await services.datasets.upsert(name, body.values, origin=origin_of(token))
    await _audit(audit, "record.upsert", rec.dataset, rec.id)
    return _out(rec)


@router.patch("/{record_id}", summary="Update a record")
async def update_record(
    *,
    name: str,
    record_id: int,
    body: RecordBody,
    services: Services,
    token: CurrentToken,
    audit: Audit,
) -> RecordOut:
    """Change the fields given; the others keep their values."""
    rec = await services.datasets.update(name, record_id, body.values, origin=origin_of(token))
    await _audit(audit, "record.update", rec.dataset, rec.id)
    return _out(rec)


@router.delete("/{record_id}", status_code=204, summary="Delete a record")
async def delete_record(
    name: str, record_id: int, services: Services, token: CurrentToken, audit: Audit
) -> Response:
    """Delete a record (refused while other records link to it)."""
    await services.datasets.delete(name, record_id, origin=origin_of(token))
    await _audit(audit, "record.delete", services.registry.get(name).name, record_id)
    return Response(status_code=204)


@router.post("/{record_id}/links/{link}", summary="Link records")
async def link_records(
    *,
    name: str,
    record_id: int,
    link: str,
    body: LinkTargets,
    services: Services,
    token: CurrentToken,
    audit: Audit,
) -> RecordOut:
    """Add targets to an m:n link, or set a to-one link to its single target."""
    rec = await services.datasets.link(name, record_id, link, body.targets, origin=origin_of(token))
    await _audit(audit, "record.link", rec.dataset, rec.id, link=link)
    return _out(rec)


@router.delete("/{record_id}/links/{link}", summary="Unlink records")
async def unlink_records(
    *,
    name: str,
    record_id: int,
    link: str,
    body: LinkTargets,
    services: Services,
    token: CurrentToken,
    audit: Audit,
) -> RecordOut:
    """Remove targets from an m:n link, or clear a to-one link."""
    rec = await services.datasets.unlink(
        name, record_id, link, body.targets, origin=origin_of(token)
    )
    await _audit(audit, "record.unlink", rec.dataset, rec.id, link=link)
    return _out(rec)
