"""The ``[console]`` and ``[mail]`` configuration sections and the console's view of them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carewire.config import load, render_default
from carewire.errors import ConfigError
from carewire.web.console import console_config


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "carewire.toml").write_text(text)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, render_default("hospital.example")), env={})
    assert (cfg.console.session_timeout, cfg.console.reset_link_ttl) == ("20m", "30m")
    m = cfg.mail
    assert (m.smtp_host, m.smtp_port, m.smtp_starttls, m.smtp_user) == ("", 587, True, "")
    assert cfg.mail_sender == "carewire@hospital.example"
    assert cfg.outbox_dir == tmp_path.resolve() / "outbox"
    console = console_config(cfg)
    assert console.session_timeout == timedelta(minutes=20)
    assert console.reset_link_ttl == timedelta(minutes=30)
    assert console.link_base == "https://hospital.example:8443"
    assert load(write(tmp_path, ""), env={}).mail_sender == "carewire@carewire.localhost"


def test_overrides(tmp_path: Path) -> None:
    env = {
        "CAREWIRE_CONSOLE_SESSION_TIMEOUT": "5m",
        "CAREWIRE_MAIL_SMTP_STARTTLS": "false",
        "CAREWIRE_SERVER_HTTPS_PORT": "443",
    }
    cfg = load(write(tmp_path, "[mail]\nsmtp_host = 'mail.h.example'\n"), env=env)
    assert cfg.mail.smtp_starttls is False and cfg.mail.smtp_host == "mail.h.example"
    console = console_config(cfg)
    assert console.session_timeout == timedelta(minutes=5)
    assert console.link_base == "https://carewire.localhost"
    assert console_config(cfg, base_url="https://x:1/").link_base == "https://x:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[console]\nsession_timeout = 'soon'\n", "console.session_timeout: expected a duration"),
        ("[console]\nsession_timeout = '0s'\n", "console.session_timeout: must be between 1s"),
        ("[console]\nsession_timeout = '2d'\n", "console.session_timeout: must be between 1s"),
        ("[console]\nreset_link_ttl = '30s'\n", "console.reset_link_ttl: must be between 1m"),
        ("[console]\nidle = '1m'\n", "console.idle: unknown key"),
        ("[mail]\nsmtp_port = 0\n", "mail.smtp_port: expected a port 1–65535"),
        ("[mail]\nsmtp_port = '25'\n", "mail.smtp_port: expected an integer"),
        ("[mail]\nsmtp_host = 'bad host'\n", "mail.smtp_host: expected a host name"),
        ("[mail]\nsmtp_starttls = 'yes'\n", "mail.smtp_starttls: expected true or false"),
        ("[mail]\nsmtp_password = 'x'\n", "mail.smtp_password: set mail.smtp_user too"),
        ("[mail]\nsmtp_user = 'u'\n", "mail.smtp_user: set mail.smtp_host too"),
        (
            "[mail]\nsmtp_host = 'm'\nsmtp_user = 'u'\nsmtp_starttls = false\n",
            "mail.smtp_user: a login needs mail.smtp_starttls = true",
        ),
        ("[mail]\nsender = 'nobody'\n", "mail.sender: expected an address"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, text), env={})
    assert message in str(exc.value)


def test_the_password_is_not_in_error_messages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, "[mail]\nsmtp_password = 'hunter2'\n"), env={})
    assert "hunter2" not in str(exc.value)
