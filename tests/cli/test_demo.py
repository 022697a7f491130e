"""``carewire demo``: the demo hospital."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.cli.conftest import Run


@pytest.fixture
def domain() -> str:
    return "Hospital.Example."


def test_demo_hospital(data: Path, run: Run) -> None:
    code, out, _ = run("demo", "--data-dir", str(data))
    assert code == 0
    assert "12 staff accounts, 36 roster entries" in out
    assert "dr.chen@hospital.example" in out
    password = (data / "demo-password.txt").read_text().strip()
    assert stat.S_IMODE((data / "demo-password.txt").stat().st_mode) == 0o600
    assert password in out
    code, out, _ = run("user", "list", "--data-dir", str(data))
    assert "nurse.adams@hospital.example\tGrace Adams\tok" in out
    code, out, _ = run("demo", "--data-dir", str(data))
    assert code == 0 and "already loaded" in out  # idempotent


async def test_demo_hospital_is_an_organisation_with_its_units_as_groups(tmp_path: Path) -> None:
    from carewire.assembly import Options, assemble
    from carewire.demo import UNITS, load_demo
    from carewire.directory.model import SYSTEM_CALLER
    from carewire.directory.policy import pin_problem

    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    services = await assemble(Options(url=url, domain="h.example"))
    try:
        result = await load_demo(services, domain="h.example")
        assert len(result.created) == 12 and result.existing == []
        assert result.roster_items == 36  # each of 12 sees the 3 colleagues of their unit
        assert pin_problem(result.pin, 4) is None
        directory = services.directory
        (org,) = await directory.organisations.list_visible(SYSTEM_CALLER)
        assert org.name == result.organisation
        groups = {g.name: g for g in await directory.groups.list_for(SYSTEM_CALLER, org.id)}
        assert set(groups) == set(UNITS)
        icu = {u.login for u in await directory.groups.members(SYSTEM_CALLER, groups["ICU"].id)}
        assert icu == {"nurse.adams", "nurse.baker", "dr.chen", "dr.diaz"}
        chen = await directory.users.get(SYSTEM_CALLER, "dr.chen")
        assert chen.profile.display_name == "Wei Chen, MD"
        assert (await directory.users.get(SYSTEM_CALLER, "charge.lee")).is_org_admin
        assert not (await directory.users.get(SYSTEM_CALLER, "nurse.ito")).is_org_admin
        again = await load_demo(services, domain="h.example")  # idempotent
        assert again.created == [] and len(again.existing) == 12
        assert len(await directory.groups.list_for(SYSTEM_CALLER, org.id)) == 3
    finally:
        await services.close()
