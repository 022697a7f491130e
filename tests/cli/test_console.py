"""``carewire console user …`` and ``carewire mail outbox``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from carewire.cli import console
from carewire.cli.runtime import Services
from carewire.config import load, render_default
from carewire.mail import OutboxMailer
from carewire.security.audit_key import create_key_file
from tests.cli.conftest import OnPlatform


def run(data_dir: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="carewire")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--data-dir", default=str(data_dir))
        return sp

    console.register(sub, with_data_dir)
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "carewire.toml").write_text(render_default("h.example"))
    create_key_file(load(tmp_path).audit_key_file)  # as carewire init makes it
    return tmp_path


def test_console_users(
    data_dir: Path, capsys: pytest.CaptureFixture[str], on_platform: OnPlatform
) -> None:
    assert run(data_dir, "console", "user", "list") == 0
    assert "no console users" in capsys.readouterr().out
    assert run(data_dir, "console", "user", "add", "Nina", "--role", "auditor",
               "--email", "nina@h.example") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "console user nina created (auditor)" in out
    password = out.split("one-time password")[1].split()[0]
    assert len(password) >= 12
    assert run(data_dir, "console", "user", "list") == 0
    out = capsys.readouterr().out
    assert "nina" in out and "auditor" in out and "must change password" in out
    assert password not in out
    assert run(data_dir, "console", "user", "unlock", "nina") == 0
    assert "unlocked" in capsys.readouterr().out
    assert run(data_dir, "console", "user", "passwd", "nina") == 0
    new = capsys.readouterr().out.split(": ")[1].split()[0]
    assert new != password

    async def sign_in(platform: Services) -> str:
        session, _ = await platform.console.sign_in("nina", new)
        return session.user.role.value

    assert on_platform(data_dir, sign_in) == "auditor"
    with pytest.raises(SystemExit):
        run(data_dir, "console", "user", "add", "x", "--role", "king")


def test_mail_outbox(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "mail", "outbox") == 0
    assert "the outbox is empty" in capsys.readouterr().out
    mailer = OutboxMailer(data_dir / "outbox", sender="carewire@h.example")
    asyncio.run(mailer.send("nina@h.example", "Reset your password", "the link\n"))
    assert run(data_dir, "mail", "outbox") == 0
    out = capsys.readouterr().out
    assert "nina@h.example" in out and "Reset your password" in out and out.count("\n") == 2
    assert run(data_dir, "mail", "outbox", "--show", "1") == 0
    out = capsys.readouterr().out
    assert "To: nina@h.example" in out and "the link" in out
    assert run(data_dir, "mail", "outbox", "--show", "2") == 1
