"""The console's Assignments page: by unit and shift, for every role."""

from __future__ import annotations

from carewire.security.console_auth import Role
from tests.adapters.assignments.staffing import staff
from tests.web.console.test_data_pages import Full, full

__all__ = ["full"]


async def test_the_page_groups_the_shift_by_unit(full: Full) -> None:
    await staff(full.platform.datasets)
    viewer = await full.user("olga", Role.ORG_ADMIN)
    r = await viewer.get("/")
    assert 'href="/assignments"' in r.text
    r = await viewer.get("/assignments")
    assert r.status_code == 200, r.text
    assert "3 assignments." in r.text
    assert r.text.index("<caption>4 West</caption>") < r.text.index("<caption>5 East</caption>")
    assert "Ann Able (ann)" in r.text and "Bea Bond" not in r.text
    assert '<span class="tag">patient</span>' in r.text  # cid's follows a patient
    r = await viewer.get("/assignments", params={"shift": "next", "unit": "4 West"})
    assert "1 assignment." in r.text and "Bea Bond (bea)" in r.text and "Ann Able" not in r.text
    assert '<option value="4 West" selected>' in r.text


async def test_bad_choices_say_what_is_wrong(full: Full) -> None:
    await staff(full.platform.datasets)
    viewer = await full.user("olga", Role.AUDITOR)
    r = await viewer.get("/assignments", params={"unit": "ICU"})
    assert r.status_code == 400 and "no unit is named &#39;ICU&#39;" in r.text
    r = await viewer.get("/assignments", params={"shift": "2026-03-01T08:00"})
    assert r.status_code == 400 and "needs a time zone" in r.text
