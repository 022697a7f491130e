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


async def test_demo_rosters(tmp_path: Path) -> None:
    from carewire.assembly import Options, open_core
    from carewire.core.stores import Subscription
    from carewire.demo import load_demo

    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    core = await open_core(Options(url=url, domain="h.example"))
    stores = core.stores
    try:
        result = await load_demo(stores, core.accounts, domain="h.example")
        assert len(result.created) == 12
        version, items = await stores.roster.get_roster("dr.chen")
        assert version > 0 and len(items) == 3
        assert {i.groups for i in items} == {("ICU",)}
        assert all(i.subscription is Subscription.BOTH for i in items)
        names = {i.contact: i.name for i in items}
        assert names["nurse.adams@h.example"] == "Grace Adams, RN"
    finally:
        await core.close()
