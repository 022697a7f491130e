"""Assignment views by unit and shift (carewire.adapters.assignments.views), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carewire.adapters.assignments.views import AssignmentViews
from carewire.assembly import Assembly
from carewire.errors import NotFoundError, ValidationError
from tests.adapters.assignments.staffing import SHIFT_START, staff
from tests.adapters.conftest import platform  # noqa: F401


@pytest.fixture
async def views(platform: Assembly) -> AssignmentViews:  # noqa: F811
    await staff(platform.datasets)
    return AssignmentViews(platform.datasets)


async def test_the_current_shift_by_unit(views: AssignmentViews) -> None:
    view = await views.view()
    assert view.total == 3
    groups = view.by_unit()
    assert list(groups) == ["4 West", "5 East", ""]  # units by name, no unit last
    ann = groups["4 West"][0]
    assert (ann.login, ann.name, ann.role, ann.location, ann.level) == (
        "ann",
        "Ann Able",
        "RN",
        "101 A",
        "Primary",
    )
    assert ann.start_time == SHIFT_START and not ann.is_patient_based
    assert [r.login for r in groups["5 East"]] == ["cid"] and groups["5 East"][0].is_patient_based
    assert [r.login for r in groups[""]] == ["eve"]


@pytest.mark.parametrize(
    ("shift", "logins"),
    [
        ("next", {"bea"}),
        ("ended", {"dee"}),
        ("all", {"ann", "bea", "cid", "dee", "eve"}),
        ((SHIFT_START + timedelta(hours=13)).isoformat(), {"bea"}),  # the night
        ((SHIFT_START + timedelta(hours=1)).isoformat(), {"ann", "cid", "dee", "eve"}),
    ],
)
async def test_shifts(views: AssignmentViews, shift: str, logins: set[str]) -> None:
    view = await views.view(shift=shift)
    assert {r.login for r in view.rows} == logins and view.total == len(logins)


async def test_one_unit(views: AssignmentViews) -> None:
    view = await views.view(unit="4 West", shift="all")
    assert {r.login for r in view.rows} == {"ann", "bea"}
    assert list(view.by_unit()) == ["4 West"]


async def test_bad_shifts_and_units_are_clear_errors(views: AssignmentViews) -> None:
    with pytest.raises(ValidationError, match="unknown shift 'later'"):
        await views.view(shift="later")
    with pytest.raises(ValidationError, match="needs a time zone"):
        await views.view(shift="2026-03-01T08:00")
    with pytest.raises(NotFoundError, match="no unit is named 'ICU'"):
        await views.view(unit="ICU")
