"""GET /assignments: assignments by unit and shift over the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.adapters.assignments.staffing import staff
from tests.web.conftest import Api, assert_problem


async def test_the_current_shift_and_one_unit(api: Api) -> None:
    await staff(api.platform.datasets)
    r = await api.reader.get("/assignments")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["shift"], body["unit"], body["total"]) == ("current", "", 3)
    ann = next(a for a in body["assignments"] if a["login"] == "ann")
    assert (ann["name"], ann["location"], ann["units"], ann["state"], ann["level"]) == (
        "Ann Able",
        "101 A",
        ["4 West"],
        "active",
        "Primary",
    )
    assert ann["start_time"].startswith("2026-03-01T07:00:00")
    r = await api.reader.get("/assignments", params={"unit": "4 West", "shift": "next"})
    assert [a["login"] for a in r.json()["assignments"]] == ["bea"]


async def test_errors_are_problems(api: Api) -> None:
    await staff(api.platform.datasets)
    r = await api.reader.get("/assignments", params={"unit": "ICU"})
    assert_problem(r, 404, "not-found", detail="no unit is named 'ICU'")
    r = await api.reader.get("/assignments", params={"shift": "soon"})
    body = assert_problem(r, 422, "invalid")
    assert "unknown shift 'soon'" in str(body["detail"])
    assert (await api.anonymous.get("/assignments")).status_code == 401
