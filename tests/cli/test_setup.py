"""``carewire init``: a new data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from carewire.cli.runtime import Services
from carewire.security.console_auth import SignInError
from tests.cli.conftest import OnPlatform, Run, init_data


@pytest.fixture
def domain() -> str:
    return "Hospital.Example."


@pytest.fixture
def data(tmp_path: Path, run: Run, domain: str) -> Path:
    """A data directory ``carewire init`` makes in this test, not a copy of another's."""
    return init_data(tmp_path, run, domain)


def test_init_creates_everything(data: Path, run: Run) -> None:
    assert (data / "carewire.toml").exists() and (data / "carewire.db").exists()
    assert (data / "certs/xmpp.pem").exists()
    secrets = ("certs/xmpp.key", "keys/server.secret", "keys/metrics.token")
    for secret in (*secrets, "initial-admin-password.txt"):
        assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600
    password = (data / "initial-admin-password.txt").read_text().splitlines()[1]
    assert len(password) >= 12
    code, _, err = run("init", "--data-dir", str(data), "--domain", "x.example")
    assert code == 2 and "already initialised" in err


def test_init_rejects_a_bad_domain(tmp_path: Path, run: Run) -> None:
    code, _, err = run("init", "--data-dir", str(tmp_path / "d"), "--domain", "not a domain")
    assert code == 2 and "server.domain" in err
    assert not (tmp_path / "d" / "carewire.toml").exists()


def test_one_administrator_for_chat_and_the_console(
    tmp_path: Path, run: Run, on_platform: OnPlatform
) -> None:
    data = tmp_path / "data"
    code, out, err = run("init", "--data-dir", str(data), "--domain", "h.example")
    assert code == 0, err
    printed = {
        k: v
        for k, _, v in (line.strip().partition(" ") for line in out.splitlines())
        if k in ("administrator", "password")
    }
    printed = {k: v.strip() for k, v in printed.items()}
    assert printed["administrator"] == "admin@h.example  (chat, and the web console as admin)"
    password = printed["password"]
    assert "for chat and the console at once with 'carewire user passwd admin" in out
    assert "console pw" not in out
    assert (data / "initial-admin-password.txt").read_text() == f"admin@h.example\n{password}\n"
    assert not (data / "initial-console-password.txt").exists()

    async def console_accepts(p: Services, login: str, secret: str) -> bool:
        try:
            session, _ = await p.console.sign_in(login, secret)
        except SignInError:
            return False
        assert not session.user.must_change_password  # nothing to change first
        return True

    for login in ("admin", "admin@h.example"):
        assert on_platform(data, lambda p, login=login: console_accepts(p, login, password))

    new = "a new shared admin password"
    code, out, err = run("user", "passwd", "admin", "--password", new, "--data-dir", str(data))
    assert code == 0, err
    assert (
        out.strip() == "password changed for admin@h.example (and for the web console user admin)"
    )
    assert on_platform(data, lambda p: console_accepts(p, "admin", new))
    assert not on_platform(data, lambda p: console_accepts(p, "admin", password))
    # The console's policy holds for the shared password; nothing is changed.
    code, _, err = run("user", "passwd", "admin", "--password", "short", "--data-dir", str(data))
    assert code == 2 and err.startswith("error: ") and "12" in err
    assert on_platform(data, lambda p: console_accepts(p, "admin", new))
