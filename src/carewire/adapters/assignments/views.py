"""Assignment views: who is assigned where, by unit and shift (the REST API, the CLI, the console).

Read-only. A *shift* picks assignments by state or by time:

- ``current``: active now; ``next``: assigned, not started; ``ended``: expired or deleted;
  ``all``: every one;
- an instant (ISO 8601 with a time zone): the assignments whose time span covers it
  (``start_time <= at < end_time``, an unset end never ends), except deleted ones.

The unit of an assignment is the unit (or units) its location is linked to
(``LOCATIONS.units``; the assignment manager links bed locations to the
room's unit). Rows carry no patient data: a patient-based assignment says so,
and where it is, but not who the patient is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from carewire.adapters.assignments.lifecycle import State
from carewire.datasets.model import Record
from carewire.datasets.paths import PathResolver, parse_path
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService
from carewire.errors import NotFoundError, ValidationError

SHIFTS: Final = ("current", "next", "ended", "all")
LIMIT: Final = 1000
_STATES: Final = {
    "current": (State.ACTIVE.value,),
    "next": (State.NEXT.value,),
    "ended": (State.EXPIRED.value, State.DELETED.value),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentRow:
    """One assignment as the views show it.

    Attributes:
        id: The ASSIGNMENTS record id.
        assignment_id: Its identifier.
        interface_id: The interface that owns it.
        level: Its level (Primary, Backup …).
        state: next, active, expired, deleted (or "" before the manager saw it).
        login: The assigned user's login ("" when none).
        name: The user's name.
        role: The functional role's name.
        location: The location's name (or its id when it has none).
        units: The location's units, by name.
        start_time: When it starts.
        end_time: When it ends.
        assigned_at: When the manager first saw it.
        accepted_at: When it became active.
        ended_at: When it ended.
        is_patient_based: It follows a patient's bed.
    """

    id: int
    assignment_id: str
    interface_id: str
    level: str
    state: str
    login: str
    name: str
    role: str
    location: str
    units: tuple[str, ...]
    start_time: datetime | None
    end_time: datetime | None
    assigned_at: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None
    is_patient_based: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentView:
    """The rows of one view, and whether the limit cut it short.

    Attributes:
        rows: By unit, location, level, then login.
        total: How many assignments matched (before the limit).
        shift: The shift asked for.
        unit: The unit asked for ("" for every unit).
    """

    rows: tuple[AssignmentRow, ...]
    total: int
    shift: str
    unit: str = ""

    def by_unit(self) -> dict[str, list[AssignmentRow]]:
        """Rows grouped by unit name ("" for assignments of no unit), in unit order."""
        groups: dict[str, list[AssignmentRow]] = {}
        for row in self.rows:
            for unit in row.units or ("",):
                if not self.unit or unit == self.unit:
                    groups.setdefault(unit, []).append(row)
        return dict(sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0].casefold())))


class AssignmentViews:
    """Reads assignments for people: by unit and shift."""

    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets
        self.resolver = PathResolver(datasets.registry, datasets.store)

    async def view(
        self, *, shift: str = "current", unit: str = "", limit: int = LIMIT
    ) -> AssignmentView:
        """The assignments of ``shift`` (see the module docstring) in ``unit`` (any when "").

        Raises:
            ValidationError: An unknown shift.
            NotFoundError: An unknown unit.
        """
        filters, at = _shift_filters(shift)
        if unit:
            locations = await self._locations_of_unit(unit)
            if not locations:
                return AssignmentView(rows=(), total=0, shift=shift, unit=unit)
            filters.append(Filter(field="location", op=FilterOp.IN, value=locations))
        query = Query(filters=tuple(filters), sort=(Sort(field="id"),), limit=min(limit, LIMIT))
        page = await self.datasets.query("ASSIGNMENTS", query)
        records = [r for r in page.records if at is None or _covers(r, at)]
        rows = await self._rows(records)
        rows.sort(key=lambda r: (r.units[:1], r.location, r.level, r.login))
        total = page.total if at is None else len(records)
        return AssignmentView(rows=tuple(rows), total=total, shift=shift, unit=unit)

    async def _locations_of_unit(self, name: str) -> list[int]:
        found = await self.datasets.query(
            "UNITS", Query(filters=(Filter(field="name", op=FilterOp.EQ, value=name),))
        )
        if not found.records:
            raise NotFoundError(f"no unit is named {name!r}")
        path = parse_path(self.datasets.registry, "UNITS", "locations.id")
        ids: list[int] = []
        for record in found.records:  # one per facility with a unit of this name
            value = await self.resolver.resolve(record, path)
            ids.extend(v for v in _list(value) if isinstance(v, int))
        return ids

    async def _rows(self, records: Sequence[Record]) -> list[AssignmentRow]:
        users = await self._by_id("USERS", _ids(records, "usr"))
        roles = await self._by_id("FUNCTIONAL_ROLES", _ids(records, "role"))
        locations = await self._by_id("LOCATIONS", _ids(records, "location"))
        units = await self._units(locations.values())
        return [_row(r, users, roles, locations, units) for r in records]

    async def _by_id(self, dataset: str, ids: set[int]) -> dict[int, Record]:
        if not ids:
            return {}
        query = Query(filters=(Filter(field="id", op=FilterOp.IN, value=sorted(ids)),), limit=LIMIT)
        return {r.id: r for r in (await self.datasets.query(dataset, query)).records}

    async def _units(self, locations: Iterable[Record]) -> dict[int, tuple[str, ...]]:
        path = parse_path(self.datasets.registry, "LOCATIONS", "units.name")
        out: dict[int, tuple[str, ...]] = {}
        for location in locations:
            names = _list(await self.resolver.resolve(location, path))
            out[location.id] = tuple(sorted({str(n) for n in names}, key=str.casefold))
        return out


def _shift_filters(shift: str) -> tuple[list[Filter], datetime | None]:
    if shift == "all":
        return [], None
    states = _STATES.get(shift)
    if states is not None:
        return [Filter(field="state", op=FilterOp.IN, value=list(states))], None
    try:
        at = datetime.fromisoformat(shift)
    except ValueError:
        raise ValidationError(
            f"unknown shift {shift!r}: use current, next, ended, all or an ISO 8601 time"
        ) from None
    if at.tzinfo is None:
        raise ValidationError(f"the time {shift!r} needs a time zone (e.g. 2026-03-01T07:00Z)")
    return [
        Filter(field="state", op=FilterOp.NE, value=State.DELETED.value),
        Filter(field="start_time", op=FilterOp.LE, value=at),
    ], at


def _covers(record: Record, at: datetime) -> bool:
    end = record.get("end_time")
    return not isinstance(end, datetime) or end > at


def _row(
    r: Record,
    users: dict[int, Record],
    roles: dict[int, Record],
    locations: dict[int, Record],
    units: dict[int, tuple[str, ...]],
) -> AssignmentRow:
    user = users.get(_int(r.get("usr")) or 0)
    role = roles.get(_int(r.get("role")) or 0)
    location = locations.get(_int(r.get("location")) or 0)
    name = ""
    if user is not None:
        name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    place = ""
    if location is not None:
        place = str(location.get("name") or location.get("location_id") or "")
    return AssignmentRow(
        id=r.id,
        assignment_id=str(r.get("assignment_id") or ""),
        interface_id=str(r.get("interface_id") or ""),
        level=str(r.get("level") or ""),
        state=str(r.get("state") or ""),
        login="" if user is None else str(user.get("login") or ""),
        name=name,
        role="" if role is None else str(role.get("name") or ""),
        location=place,
        units=units.get(location.id, ()) if location is not None else (),
        start_time=_time(r.get("start_time")),
        end_time=_time(r.get("end_time")),
        assigned_at=_time(r.get("assigned_at")),
        accepted_at=_time(r.get("accepted_at")),
        ended_at=_time(r.get("ended_at")),
        is_patient_based=r.get("patient") is not None,
    )


def _ids(records: Iterable[Record], name: str) -> set[int]:
    return {v for r in records if (v := _int(r.get(name))) is not None}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else ([] if value is None else [value])


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None
