"""The console's Assignments page: who is assigned where, by unit and shift (read-only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from carewire.adapters.assignments.views import SHIFTS, AssignmentView, AssignmentViews
from carewire.datasets.query import Query, Sort
from carewire.errors import NotFoundError, ValidationError
from carewire.web.console.auth import ANY_ROLE, require_role
from carewire.web.console.data import need, services
from carewire.web.console.render import render

SHIFT_LABELS = {"current": "On shift now", "next": "Next", "ended": "Ended", "all": "All"}


async def assignments(request: Request) -> Response:
    """GET /assignments?shift=current&unit=…: assignments grouped by unit."""
    signed_in = await require_role(request, *ANY_ROLE)
    datasets = need(services(request).datasets)
    shift = request.query_params.get("shift", "current") or "current"
    unit = request.query_params.get("unit", "")
    error = ""
    view = AssignmentView(rows=(), total=0, shift=shift, unit=unit)
    try:
        view = await AssignmentViews(datasets).view(shift=shift, unit=unit)
    except (ValidationError, NotFoundError) as exc:
        error = exc.message
    units = await datasets.query("UNITS", Query(sort=(Sort(field="name"),), limit=1000))
    return render(
        request,
        "assignments.html",
        title="Assignments",
        signed_in=signed_in,
        status_code=400 if error else 200,
        error=error,
        view=view,
        groups=view.by_unit(),
        shift=shift,
        unit=unit,
        shifts=[(s, SHIFT_LABELS[s]) for s in SHIFTS],
        units=sorted({str(u.get("name")) for u in units.records}, key=str.casefold),
    )
