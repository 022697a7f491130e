"""Outgoing mail: the outbox folder, a real SMTP server (aiosmtpd), and choosing by config."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from carewire.config import load, render_default
from carewire.mail import MailError, OutboxMailer, SmtpMailer, mailer_from_config, read_outbox
from tests.mailserver import SmtpServer, read_mails, smtp_server, text_of

__all__ = ["smtp_server"]  # the fixture, requested by name


async def test_outbox_writes_rfc5322_files(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"
    mailer = OutboxMailer(outbox, sender="carewire@h.example")
    await mailer.send("nurse@h.example", "Hello ünïcode", "Line one\nLine two — with a dash\n")
    await mailer.send("other@h.example", "Second", "x\n")
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary file left
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    first = read_mails(outbox)[0]
    assert (first["From"], first["To"], first["Subject"]) == (
        "carewire@h.example",
        "nurse@h.example",
        "Hello ünïcode",
    )
    assert first["Date"] and first["Message-ID"].endswith("@h.example>")
    assert text_of(first) == "Line one\nLine two — with a dash\n"
    entries = read_outbox(outbox)
    assert [(e.to, e.subject) for e in entries] == [
        ("nurse@h.example", "Hello ünïcode"),
        ("other@h.example", "Second"),
    ]
    assert read_outbox(tmp_path / "missing") == []


async def test_outbox_failure_is_a_mail_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MailError, match="outbox"):
        await OutboxMailer(tmp_path / "file" / "outbox").send("a@b.example", "s", "b")


async def test_smtp_delivers_to_a_real_server(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, starttls=False, sender="carewire@h.example"
    )
    await mailer.send("nurse@h.example", "Reset", "Open https://h.example/reset/abc\n")
    assert smtp_server.inbox.received.wait(10)
    [msg] = smtp_server.inbox.messages
    assert msg["Subject"] == "Reset"
    assert text_of(msg) == "Open https://h.example/reset/abc\n"
    assert smtp_server.inbox.envelopes == [("carewire@h.example", ["nurse@h.example"])]
    assert "password" not in repr(SmtpMailer("h", user="u", password="hunter2", sender="a@b.c"))


async def test_smtp_failure_is_a_mail_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mailer = SmtpMailer("127.0.0.1", port, starttls=False, sender="a@b.example", timeout=2)
    with pytest.raises(MailError, match="cannot send mail"):
        await mailer.send("x@b.example", "s", "b")


def test_mailer_from_config(tmp_path: Path) -> None:
    (tmp_path / "carewire.toml").write_text(render_default("h.example"))
    cfg = load(tmp_path, env={})
    outbox = mailer_from_config(cfg)
    assert isinstance(outbox, OutboxMailer)
    assert outbox.directory == tmp_path.resolve() / "outbox"
    assert outbox.sender == "carewire@h.example"
    env = {
        "CAREWIRE_MAIL_SMTP_HOST": "smtp.h.example",
        "CAREWIRE_MAIL_SMTP_PORT": "2525",
        "CAREWIRE_MAIL_SMTP_USER": "carewire",
        "CAREWIRE_MAIL_SMTP_PASSWORD": "secret",
        "CAREWIRE_MAIL_SENDER": "noreply@h.example",
    }
    smtp = mailer_from_config(load(tmp_path, env=env))
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.user, smtp.sender) == (
        "smtp.h.example",
        2525,
        True,
        "carewire",
        "noreply@h.example",
    )
