"""``carewire assignments``: the assignment view through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from carewire.cli.runtime import Services
from tests.adapters.assignments.staffing import staff
from tests.cli.conftest import OnPlatform, Run


def test_the_current_shift_by_unit_and_as_json(
    data: Path, run: Run, on_platform: OnPlatform
) -> None:
    async def work(p: Services) -> None:
        await staff(p.datasets)

    on_platform(data, work)
    code, out, err = run("assignments", "--data-dir", str(data))
    assert code == 0, err
    assert out.index("== 4 West ==") < out.index("== 5 East ==") < out.index("== (no unit) ==")
    assert "101 A" in out and "ann" in out and "Ann Able" in out and "bea" not in out
    assert "201 A (patient)" in out
    assert "3 assignments, shift current" in err
    code, out, _ = run(
        "assignments", "--shift", "next", "--unit", "4 West", "--json", "--data-dir", str(data)
    )
    body = json.loads(out)
    assert [a["login"] for a in body["assignments"]] == ["bea"]
    assert body["assignments"][0]["units"] == ["4 West"]


def test_an_unknown_unit_or_shift_is_a_clear_error(data: Path, run: Run) -> None:
    code, _, err = run("assignments", "--unit", "ICU", "--data-dir", str(data))
    assert code == 2 and "no unit is named 'ICU'" in err
    code, _, err = run("assignments", "--shift", "later", "--data-dir", str(data))
    assert code == 2 and "unknown shift 'later'" in err
