"""Configuration: defaults, TOML, environment overrides, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carewire.config import load, parse_duration, render_default
from carewire.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "carewire.toml").write_text(text)
    return tmp_path


def test_defaults_and_rendered_file(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, render_default("hospital.example")), env={})
    assert cfg.server.domain == "hospital.example"
    assert (
        cfg.server.c2s_port,
        cfg.server.c2s_tls_port,
        cfg.server.s2s_port,
        cfg.server.https_port,
    ) == (
        5222,
        5223,
        5269,
        8443,
    )
    assert parse_duration(cfg.xmpp.offline_message_timeout, "k") == timedelta(days=7)
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'carewire.db'}"
    assert cfg.cert_file == tmp_path.resolve() / "certs/xmpp.pem"


def test_encryption_key_outside_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = load(write(data, render_default("hospital.example")), env={})
    assert cfg.encryption.enabled is True
    assert cfg.kek_file == tmp_path.resolve() / "data-keys" / "kek"
    cfg = load(data, env={"CAREWIRE_ENCRYPTION_KEY_FILE": "/etc/carewire/kek"})
    assert cfg.kek_file == Path("/etc/carewire/kek")
    cfg = load(data, env={"CAREWIRE_ENCRYPTION_KEY_FILE": "vault/kek"})  # beside the data dir
    assert cfg.kek_file == tmp_path.resolve() / "vault" / "kek"
    with pytest.raises(ConfigError, match=r"encryption\.key_file: .* is inside the data directory"):
        load(data, env={"CAREWIRE_ENCRYPTION_KEY_FILE": "data/kek"})


def test_hardening_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, render_default("hospital.example")), env={})
    assert (cfg.https.header_timeout, cfg.https.body_timeout) == ("10s", "30s")
    assert (cfg.https.max_body_bytes, cfg.https.max_upload_bytes) == (1 << 20, 16 << 20)
    assert (cfg.throttle.max_failures, cfg.throttle.window) == (20, "10m")
    assert cfg.xmpp.max_unauthenticated_per_address == 32
    assert cfg.xmpp.scram_iterations == 10_000
    assert load(write(tmp_path, ""), env={}).xmpp.scram_iterations == 10_000


def test_rendered_file_shows_template_syntax_literally() -> None:
    text = render_default("hospital.example")
    assert "Ellipsis" not in text
    assert "#{...} templates" in text


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "CAREWIRE_SERVER_C2S_PORT": "15222",
        "CAREWIRE_XMPP_REGISTER_ENABLED": "true",
        "CAREWIRE_XMPP_FEATURES": "message, offline",
        "CAREWIRE_STORAGE_URL": "postgresql://db.example/carewire",
    }
    cfg = load(write(tmp_path, render_default("h.example")), env=env)
    assert cfg.server.c2s_port == 15222 and cfg.xmpp.register_enabled is True
    assert cfg.xmpp.features == ("message", "offline")
    assert cfg.database_url == "postgresql://db.example/carewire"


def test_directory_section(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, render_default("h.example")), env={})
    d = cfg.directory
    assert (d.invitation_link_ttl, d.affiliation_link_ttl, d.pin_reset_link_ttl) == (
        "14d",
        "7d",
        "24h",
    )
    cfg = load(
        write(tmp_path, render_default("h.example")),
        env={"CAREWIRE_DIRECTORY_INVITATION_LINK_TTL": "3d"},
    )
    assert cfg.directory.invitation_link_ttl == "3d"


def test_overrides_from_the_command_line(tmp_path: Path) -> None:
    cfg = load(
        write(tmp_path, render_default("h.example")), env={}, overrides={"server": {"c2s_port": 0}}
    )
    assert cfg.server.c2s_port == 0


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nc2s_prot = 1\n", {}, "server.c2s_prot: unknown key"),
        ("[server]\nc2s_port = 'x'\n", {}, "server.c2s_port: expected an integer"),
        ("[server]\nc2s_port = 70000\n", {}, "server.c2s_port: expected a port"),
        ("[server]\ndomain = 'Bad Domain'\n", {}, "server.domain"),
        ("[xmpp]\noffline_message_timeout = 'soon'\n", {}, "xmpp.offline_message_timeout"),
        ("[xmpp]\nregister_enabled = 'yes'\n", {}, "xmpp.register_enabled: expected true or false"),
        ("[xmpp]\nscram_iterations = 10\n", {}, "xmpp.scram_iterations"),
        ("[xmpp]\nlogin_delay_after = 11\n", {}, "xmpp.login_delay_after"),
        ("[xmpp]\nregister_limit = 0\n", {}, "xmpp.register_limit"),
        ("[xmpp]\nmax_read_rate = -1\n", {}, "xmpp.max_read_rate"),
        ("[xmpp]\nmax_read_burst = 100\n", {}, "xmpp.max_read_burst"),
        ("[xmpp]\nregister_window = 'often'\n", {}, "xmpp.register_window"),
        ("[nosuch]\na = 1\n", {}, "nosuch: unknown section"),
        ("server = 1\n", {}, "server: expected a table"),
        ("[server\n", {}, "not valid TOML"),
        (
            "",
            {"CAREWIRE_SERVER_HTTPS_PORT": "abc"},
            "CAREWIRE_SERVER_HTTPS_PORT: expected an integer",
        ),
        ("", {"CAREWIRE_XMPP_REGISTER_ENABLED": "maybe"}, "CAREWIRE_XMPP_REGISTER_ENABLED"),
        ("[log]\nlevel = 'loud'\n", {}, "log.level"),
        ("[storage]\nurl = 'mysql://x'\n", {}, "storage.url"),
        ("[rules]\nmax_depth = 0\n", {}, "rules.max_depth: must be between 1 and 100"),
        ("[rules]\naction_timeout = '0s'\n", {}, "rules.action_timeout: must be more than 0s"),
        ("[rules]\ntime_zone = 'Mars/Olympus'\n", {}, "rules.time_zone: 'Mars/Olympus' is not"),
        ("[directory]\ninvitation_link_ttl = '5m'\n", {}, "directory.invitation_link_ttl"),
        ("[directory]\naffiliation_link_ttl = 'never'\n", {}, "directory.affiliation_link_ttl"),
        ("", {"CAREWIRE_DIRECTORY_PIN_RESET_LINK_TTL": "30d"}, "directory.pin_reset_link_ttl"),
        ("[encryption]\nrefresh_interval = '0s'\n", {}, "encryption.refresh_interval"),
        ("[encryption]\nenabled = 'no'\n", {}, "encryption.enabled: expected true or false"),
        ("[https]\nheader_timeout = '0s'\n", {}, "https.header_timeout: must be between"),
        ("[https]\nbody_timeout = '1h'\n", {}, "https.body_timeout: must be between"),
        ("[https]\nmax_body_bytes = 10\n", {}, "https.max_body_bytes: must be at least"),
        ("[https]\nmax_upload_bytes = 1024\n", {}, "https.max_body_bytes: must be at least"),
        ("[throttle]\nmax_failures = 0\n", {}, "throttle.max_failures: must be between"),
        ("[throttle]\nwindow = '2d'\n", {}, "throttle.window: must be between"),
        (
            "",
            {"CAREWIRE_XMPP_MAX_UNAUTHENTICATED_PER_ADDRESS": "-1"},
            "xmpp.max_unauthenticated_per_address",
        ),
        ("[pep]\ne2e_encryption = 'maybe'\n", {}, "pep.e2e_encryption: expected allow or refuse"),
        ("", {"CAREWIRE_PEP_MAX_ITEMS": "0"}, "pep.max_items: must be at least 1"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(write(tmp_path, text), env=env)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7d", 604800), ("13h", 46800), ("30m", 1800), ("45s", 45), (90, 90), ("12", 12)],
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value, "k") == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["-1", "7w", True, "", "1.5h"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ConfigError, match="k:"):
        parse_duration(value, "k")


def test_audit_section_defaults_and_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = load(write(data, render_default("h.example")), env={})
    assert cfg.audit.checkpoint_interval == "15m" and cfg.audit.checkpoint_log is True
    assert cfg.audit_key_file == tmp_path / "data-keys" / "audit.key"
    assert cfg.audit_checkpoint_dir == tmp_path / "data-audit"
    env = {"CAREWIRE_AUDIT_KEY_FILE": "/srv/keys/audit.key", "CAREWIRE_AUDIT_CHECKPOINT_DIR": "cp"}
    cfg = load(data, env=env)
    assert cfg.audit_key_file == Path("/srv/keys/audit.key")
    assert cfg.audit_checkpoint_dir == tmp_path / "cp"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CAREWIRE_AUDIT_KEY_FILE": "data/audit.key"}, "audit.key_file: "),
        ({"CAREWIRE_AUDIT_CHECKPOINT_DIR": "data/cp"}, "audit.checkpoint_dir: "),
        ({"CAREWIRE_AUDIT_CHECKPOINT_INTERVAL": "2d"}, "audit.checkpoint_interval: must be"),
    ],
)
def test_audit_section_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    (tmp_path / "data").mkdir()
    data = write(tmp_path / "data", render_default("h.example"))
    with pytest.raises(ConfigError, match=message) as err:
        load(data, env=env)
    assert "outside the data directory" in str(err.value) or "between" in str(err.value)


def test_contact_section(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, render_default("h.example")), env={})
    assert cfg.contact.addresses() == ()
    text = render_default("h.example") + (
        "\n[contact]\nadmin = ['mailto:xmpp@h.example', 'xmpp:admin@h.example']\n"
        "support = ['https://h.example/help']\n"
    )
    cfg = load(write(tmp_path, text), env={"CAREWIRE_CONTACT_ABUSE": "mailto:abuse@h.example"})
    assert cfg.contact.addresses() == (
        ("abuse-addresses", ("mailto:abuse@h.example",)),
        ("admin-addresses", ("mailto:xmpp@h.example", "xmpp:admin@h.example")),
        ("support-addresses", ("https://h.example/help",)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("admin = ['xmpp@h.example']", "contact.admin: 'xmpp@h.example' is not a URI"),
        ("abuse = ['mailto: a@h.example']", "contact.abuse: 'mailto: a@h.example' is not a URI"),
        ("support = 'https://h.example'", "contact.support: expected a list of strings"),
        ("phone = ['tel:+15551234']", "contact.phone: unknown key"),
    ],
)
def test_contact_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, render_default("h.example") + f"\n[contact]\n{text}\n"), env={})


def test_pep_section_reaches_the_features(tmp_path: Path) -> None:
    from carewire.assembly_config import feature_config

    text = "[pep]\ne2e_encryption = 'allow'\nitem_max_bytes = 1000\nmax_nodes = 9\n"
    cfg = load(write(tmp_path, text), env={"CAREWIRE_PEP_E2E_REASON": "ask IT"})
    features = feature_config(cfg)
    assert features.e2e_encryption == "allow" and features.e2e_reason == "ask IT"
    assert features.pep_item_max_bytes == 1000 and features.pep_max_nodes == 9
    assert features.pep_avatar_max_bytes == 196_608 and features.pep_max_items == 256
