"""``carewire user``: account administration and CSV import."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run


@pytest.fixture
def domain() -> str:
    return "Hospital.Example."


def test_commands_need_an_initialised_dir(tmp_path: Path, run: Run) -> None:
    code, _, err = run("user", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire init" in err


def test_user_lifecycle(data: Path, run: Run) -> None:
    d = str(data)
    assert (
        run(
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
    code, _, err = run("user", "add", "nurse.joy", "--password", "pw1", "--data-dir", d)
    assert code == 2 and "nurse.joy" in err.lower()
    code, out, _ = run("user", "list", "--data-dir", d)
    assert "nurse.joy@hospital.example\tJoy\tok" in out and "admin@hospital.example" in out
    assert run("user", "passwd", "nurse.joy", "--password", "pw2", "--data-dir", d)[0] == 0
    code, _, err = run("user", "passwd", "ghost", "--password", "x", "--data-dir", d)
    assert code == 2
    code, _, err = run("user", "add", "bad@login", "--password", "x", "--data-dir", d)
    assert code == 2 and "invalid login" in err
    code, _, err = run("user", "add", "emptypw", "--password", "", "--data-dir", d)
    assert code == 2 and "password" in err
    assert run("user", "unlock", "nurse.joy", "--data-dir", d)[0] == 0
    assert run("user", "unlock", "ghost", "--data-dir", d)[0] == 1
    assert run("user", "remove", "nurse.joy", "--data-dir", d)[0] == 0
    assert run("user", "remove", "nurse.joy", "--data-dir", d)[0] == 1


def test_import_reports_bad_rows_and_keeps_good_ones(data: Path, run: Run) -> None:
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
    code, out, err = run("user", "import", str(csv), "--quiet", "--data-dir", str(data))
    assert code == 1
    assert "imported 3 accounts, 1 already existed, 4 rows rejected" in out
    assert "line 4: expected login,password" in err
    assert "line 5: invalid login" in err
    assert "line 6:" in err and "password" in err
    assert "line 7: duplicate login 'nurse1'" in err
    assert "skipped: admin already exists" in err
    code, out, _ = run("user", "list", "--data-dir", str(data))
    assert "nurse4@hospital.example\tBo Chan\tok" in out


def test_import_missing_file(data: Path, run: Run) -> None:
    code, _, err = run("user", "import", str(data / "nope.csv"), "--data-dir", str(data))
    assert code == 2 and "no such file" in err


def test_unusable_password_is_a_clear_error(data: Path, run: Run) -> None:
    code, _, err = run("user", "add", "nurse9", "--password", "bell\u0007", "--data-dir", str(data))
    assert code == 2 and "unusable password" in err
