"""The carewire command: init, account administration and CSV import."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from carewire.cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    d = tmp_path / "data"
    code, out, _ = run(capsys, "init", "--data-dir", str(d), "--domain", "Hospital.Example.")
    assert code == 0
    assert "administrator  admin@hospital.example" in out
    return d


def test_init_creates_everything(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (data / "carewire.toml").exists() and (data / "carewire.db").exists()
    assert (data / "certs/xmpp.pem").exists()
    for secret in ("certs/xmpp.key", "keys/server.secret", "initial-admin-password.txt"):
        assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600
    password = (data / "initial-admin-password.txt").read_text().splitlines()[1]
    assert len(password) >= 12
    code, _, err = run(capsys, "init", "--data-dir", str(data), "--domain", "x.example")
    assert code == 2 and "already initialised" in err


def test_init_rejects_a_bad_domain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "init", "--data-dir", str(tmp_path / "d"), "--domain", "not a domain"
    )
    assert code == 2 and "server.domain" in err
    assert not (tmp_path / "d" / "carewire.toml").exists()


def test_commands_need_an_initialised_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "user", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire init" in err


def test_user_lifecycle(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(data)
    assert (
        run(
            capsys,
            "user",
            "add",
            "Nurse.Joy",
            "--password",
            "pw1",
            "--first-name",
            "Joy",
            "--data-dir",
            d,
        )[0]
        == 0
    )
    code, _, err = run(capsys, "user", "add", "nurse.joy", "--password", "pw1", "--data-dir", d)
    assert code == 2 and "nurse.joy" in err.lower()
    code, out, _ = run(capsys, "user", "list", "--data-dir", d)
    assert "nurse.joy@hospital.example\tJoy\tok" in out and "admin@hospital.example" in out
    assert run(capsys, "user", "passwd", "nurse.joy", "--password", "pw2", "--data-dir", d)[0] == 0
    code, _, err = run(capsys, "user", "passwd", "ghost", "--password", "x", "--data-dir", d)
    assert code == 2
    code, _, err = run(capsys, "user", "add", "bad@login", "--password", "x", "--data-dir", d)
    assert code == 2 and "invalid login" in err
    code, _, err = run(capsys, "user", "add", "emptypw", "--password", "", "--data-dir", d)
    assert code == 2 and "password" in err
    assert run(capsys, "user", "unlock", "nurse.joy", "--data-dir", d)[0] == 0
    assert run(capsys, "user", "unlock", "ghost", "--data-dir", d)[0] == 1
    assert run(capsys, "user", "remove", "nurse.joy", "--data-dir", d)[0] == 0
    assert run(capsys, "user", "remove", "nurse.joy", "--data-dir", d)[0] == 1


def test_import_reports_bad_rows_and_keeps_good_ones(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = data / "staff.csv"
    csv.write_text(
        "login,password,first_name,last_name\n"
        "nurse1,pw1,Ann,Lee\n"
        "nurse2,pw2\n"
        "onlyone\n"
        "bad@x,pw\n"
        "nurse3,\n"
        "nurse1,dup\n"
        "admin,taken\n"
        "\n"
        "nurse4,pw4,Bo,Chan\n"
    )
    code, out, err = run(capsys, "user", "import", str(csv), "--quiet", "--data-dir", str(data))
    assert code == 1
    assert "imported 3 accounts, 1 already existed, 4 rows rejected" in out
    assert "line 4: expected login,password" in err
    assert "line 5: invalid login" in err
    assert "line 6:" in err and "password" in err
    assert "line 7: duplicate login 'nurse1'" in err
    assert "skipped: admin already exists" in err
    code, out, _ = run(capsys, "user", "list", "--data-dir", str(data))
    assert "nurse4@hospital.example\tBo Chan\tok" in out


def test_import_missing_file(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "user", "import", str(data / "nope.csv"), "--data-dir", str(data))
    assert code == 2 and "no such file" in err


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for args in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["user", "--help"],
        ["user", "import", "--help"],
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(args)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--c2s-tls-port" in out and "login,password" in out


def test_demo_hospital(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--data-dir", str(data))
    assert code == 0
    assert "12 staff accounts, 36 roster entries" in out
    assert "dr.chen@hospital.example" in out
    password = (data / "demo-password.txt").read_text().strip()
    assert stat.S_IMODE((data / "demo-password.txt").stat().st_mode) == 0o600
    assert password in out
    code, out, _ = run(capsys, "user", "list", "--data-dir", str(data))
    assert "nurse.adams@hospital.example\tGrace Adams\tok" in out
    code, out, _ = run(capsys, "demo", "--data-dir", str(data))
    assert code == 0 and "already loaded" in out  # idempotent


async def test_demo_rosters(tmp_path: Path) -> None:
    from carewire import storage
    from carewire.core.accounts import AccountService
    from carewire.core.stores import Subscription
    from carewire.demo import load_demo
    from carewire.storage import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    await migrate.upgrade(url)
    db, stores = await storage.open_stores(url)
    try:
        result = await load_demo(stores, AccountService(stores), domain="h.example")
        assert len(result.created) == 12
        version, items = await stores.roster.get_roster("dr.chen")
        assert version > 0 and len(items) == 3
        assert {i.groups for i in items} == {("ICU",)}
        assert all(i.subscription is Subscription.BOTH for i in items)
        names = {i.contact: i.name for i in items}
        assert names["nurse.adams@h.example"] == "Grace Adams, RN"
    finally:
        await db.close()


def test_unusable_password_is_a_clear_error(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "user", "add", "nurse9", "--password", "bell\u0007", "--data-dir", str(data)
    )
    assert code == 2 and "unusable password" in err
