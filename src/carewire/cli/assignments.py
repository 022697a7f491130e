"""``carewire assignments``: who is assigned where, by unit and shift (docs/assignments.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime

from carewire.adapters.assignments.views import SHIFTS, AssignmentRow, AssignmentViews
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform


def cmd_assignments(args: argparse.Namespace) -> int:
    """List assignments by unit: the current shift unless --shift says otherwise.

    --shift is current (active), next, ended, all, or an ISO 8601 time with a
    zone (the assignments covering that instant). --unit keeps one unit.
    """

    async def work(p: Services) -> int:
        view = await AssignmentViews(p.datasets).view(shift=args.shift, unit=args.unit or "")
        if args.json:
            body = {
                "shift": view.shift,
                "unit": view.unit,
                "total": view.total,
                "assignments": [_json(r) for r in view.rows],
            }
            print(json.dumps(body, indent=2, ensure_ascii=False))
            return 0
        for unit, rows in view.by_unit().items():
            print(f"== {unit or '(no unit)'} ==")
            _table(
                [_cells(r) for r in rows],
                ("LOCATION", "LEVEL", "LOGIN", "NAME", "ROLE", "STATE", "START", "END"),
            )
        shown = len(view.rows)
        more = f" (first {shown})" if shown < view.total else ""
        print(f"{view.total} assignments{more}, shift {view.shift}", file=sys.stderr)
        return 0

    return run_with_platform(args, work, with_defaults=True)


def _cells(r: AssignmentRow) -> tuple[str, ...]:
    mark = " (patient)" if r.is_patient_based else ""
    return (
        r.location + mark,
        r.level,
        r.login,
        r.name,
        r.role,
        r.state,
        _when(r.start_time),
        _when(r.end_time),
    )


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M %Z").strip()


def _json(r: AssignmentRow) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in AssignmentRow.__slots__:
        value = getattr(r, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["units"] = list(r.units)
    return out


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header) - 1)]
    for r in cells:
        print("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip())


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``assignments``."""
    doc = cmd_assignments.__doc__ or ""
    sp = with_data_dir(
        sub.add_parser("assignments", help="assignments by unit and shift", description=doc)
    )
    sp.add_argument(
        "--shift", default="current", help=f"{', '.join(SHIFTS)} or an ISO 8601 time (current)"
    )
    sp.add_argument("--unit", help="one unit, by name")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_assignments)
