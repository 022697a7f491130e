"""The [components] section: listener keys, the two shapes of secrets, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewire.config import load
from carewire.errors import ConfigError

SECRET = "0123456789abcdef-secret"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "carewire.toml").write_text('[server]\ndomain = "hospital.example"\n' + text)
    return tmp_path


def test_defaults_have_no_components(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, ""), env={})
    c = cfg.components
    assert (c.bind, c.port, c.handshake_timeout) == ("127.0.0.1", 5347, "30s")
    assert cfg.component_secrets == ()


def test_both_shapes_and_the_environment(tmp_path: Path) -> None:
    cfg = load(
        write(
            tmp_path,
            "[components]\nport = 15347\n"
            f'[components.secrets]\n"GW.hospital.example." = "{SECRET}"\n'
            '[[components.component]]\ndomain = "pager.hospital.example"\nsecret_env = "PAGER"\n'
            f'[[components.component]]\ndomain = "sms.partner.example"\nsecret = "{SECRET}"\n',
        ),
        env={"PAGER": "from-the-environment-1234", "CAREWIRE_COMPONENTS_BIND": "::1"},
    )
    assert (cfg.components.port, cfg.components.bind) == (15347, "::1")
    assert [(s.domain, s.require()) for s in cfg.component_secrets] == [
        ("gw.hospital.example", SECRET),
        ("pager.hospital.example", "from-the-environment-1234"),
        ("sms.partner.example", SECRET),
    ]
    assert SECRET not in repr(cfg) and "from-the-environment" not in repr(cfg)


def test_a_missing_variable_is_an_error_only_where_the_secret_is_needed(tmp_path: Path) -> None:
    cfg = load(
        write(
            tmp_path, '[[components.component]]\ndomain = "p.hospital.example"\nsecret_env = "P"\n'
        ),
        env={},
    )
    (entry,) = cfg.component_secrets
    with pytest.raises(ConfigError, match="read from P, which is not set"):
        entry.require()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[components]\nport = 70000\n", r"components\.port"),
        ('[components]\nhandshake_timeout = "0s"\n', r"components\.handshake_timeout"),
        ("[components]\nmax_stanza_bytes = 100\n", r"components\.max_stanza_bytes"),
        ("[components]\nmax_send_buffer = 10000\n", r"components\.max_send_buffer"),
        ("[components]\nsecrets = 3\n", r"components\.secrets: expected a table"),
        ("[components]\ncomponent = 3\n", r"components\.component: expected"),
        ('[components.secrets]\n"gw.hospital.example" = "short"\n', "16 characters"),
        ('[components.secrets]\n"gw.hospital.example" = 5\n', r"secret: expected a string"),
        (f'[components.secrets]\n"hospital.example" = "{SECRET}"\n', "served by Carewire"),
        (f'[components.secrets]\n"chat.hospital.example" = "{SECRET}"\n', "served by Carewire"),
        (f'[components.secrets]\n"bad_name" = "{SECRET}"\n', "not a valid lowercase DNS"),
        (
            f'[components.secrets]\n"gw.hospital.example" = "{SECRET}"\n'
            f'[[components.component]]\ndomain = "gw.hospital.example"\nsecret = "{SECRET}"\n',
            "configured twice",
        ),
        ('[[components.component]]\ndomain = "gw.x"\n', "either secret or secret_env"),
        (
            f'[[components.component]]\ndomain = "gw.x"\nsecret = "{SECRET}"\nsecret_env = "X"\n',
            "either secret or secret_env",
        ),
        (f'[[components.component]]\nsecret = "{SECRET}"\n', r"domain: expected"),
        (
            f'[[components.component]]\ndomain = "gw.x"\nsecret = "{SECRET}"\nport = 1\n',
            "unknown key",
        ),
        ('[[components.component]]\ndomain = "gw.x"\nsecret_env = ""\n', "environment variable"),
        ("[components]\nfoo = 1\n", r"components\.foo: unknown key"),
    ],
)
def test_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        load(write(tmp_path, text), env={})
    assert SECRET not in str(exc.value)
