"""The ``/assignments`` resource: who is assigned where, by unit and shift (read-only).

``GET /assignments?shift=current&unit=4 West``: the shift is ``current``
(active), ``next``, ``ended``, ``all`` or an ISO 8601 instant; the unit is a
UNITS name. Rows come by unit, location and level, without patient data.
Assignments are written as ASSIGNMENTS records (``/datasets/ASSIGNMENTS/records``)
and moved by the assignment manager (docs/assignments.md).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from carewire.adapters.assignments.views import AssignmentRow, AssignmentViews
from carewire.web.api.deps import Services, authorize

router = APIRouter(prefix="/assignments", tags=["assignments"], dependencies=[Depends(authorize)])


class AssignmentOut(BaseModel):
    """One assignment."""

    id: int = Field(description="The ASSIGNMENTS record's id.")
    assignment_id: str
    interface_id: str
    level: str
    state: str = Field(description="next, active, expired or deleted.")
    login: str = Field(description="The assigned user's login.")
    name: str
    role: str
    location: str
    units: list[str]
    start_time: datetime | None
    end_time: datetime | None
    assigned_at: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None
    is_patient_based: bool = Field(description="It follows a patient's bed.")


class AssignmentList(BaseModel):
    """The assignments of a shift (at most 1,000; ``total`` counts them all)."""

    shift: str
    unit: str
    total: int
    assignments: list[AssignmentOut]


def assignment_out(row: AssignmentRow) -> AssignmentOut:
    """The answer for one row."""
    return AssignmentOut(
        id=row.id,
        assignment_id=row.assignment_id,
        interface_id=row.interface_id,
        level=row.level,
        state=row.state,
        login=row.login,
        name=row.name,
        role=row.role,
        location=row.location,
        units=list(row.units),
        start_time=row.start_time,
        end_time=row.end_time,
        assigned_at=row.assigned_at,
        accepted_at=row.accepted_at,
        ended_at=row.ended_at,
        is_patient_based=row.is_patient_based,
    )


@router.get("", summary="Assignments by unit and shift")
async def list_assignments(
    services: Services,
    shift: str = Query(
        "current", description="current, next, ended, all, or an ISO 8601 time with a zone"
    ),
    unit: str = Query("", description="A unit's name (every unit when empty)"),
    limit: int = Query(1000, ge=1, le=1000),
) -> AssignmentList:
    """The assignments of ``shift`` in ``unit``; unknown units are a 404, unknown shifts a 422."""
    view = await AssignmentViews(services.datasets).view(shift=shift, unit=unit, limit=limit)
    return AssignmentList(
        shift=view.shift,
        unit=view.unit,
        total=view.total,
        assignments=[assignment_out(r) for r in view.rows],
    )
