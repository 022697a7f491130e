"""Typed configuration: ``DATA_DIR/carewire.toml`` plus ``CAREWIRE_<SECTION>_<KEY>`` variables.

The file may also live outside the data directory (``--config``,
``$CAREWIRE_CONFIG``: :mod:`carewire.config_location`).

Validated at start: an unknown key, a wrong type or an out-of-range value is
a :class:`ConfigError` whose message names the key (``server.c2s_port``) and
says what is expected. See ``docs/configuration.md`` for every key.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from carewire.config_cluster import ClusterSection, coerce_number, validate_cluster
from carewire.config_components import (
    ComponentSecret,
    ComponentsSection,
    read_secrets,
    split_secrets,
    validate_components,
)
from carewire.config_contact import ContactSection, check_contact
from carewire.config_location import CONFIG_FILE as CONFIG_FILE
from carewire.config_location import DATA_DIR_KEY, read_table
from carewire.config_metrics import MetricsSection, validate_metrics
from carewire.config_pep import PepSection
from carewire.config_s2s import S2SSection, coerce_routes, validate_s2s
from carewire.config_sections import (
    AuditSection as AuditSection,
)
from carewire.config_sections import (
    ConsoleSection as ConsoleSection,
)
from carewire.config_sections import (
    DirectorySection as DirectorySection,
)
from carewire.config_sections import DirectorySyncSection as DirectorySyncSection
from carewire.config_sections import (
    EncryptionSection as EncryptionSection,
)
from carewire.config_sections import (
    HttpsSection as HttpsSection,
)
from carewire.config_sections import (
    LogSection as LogSection,
)
from carewire.config_sections import (
    MailSection as MailSection,
)
from carewire.config_sections import (
    RulesSection as RulesSection,
)
from carewire.config_sections import (
    ServerSection as ServerSection,
)
from carewire.config_sections import (
    StorageSection as StorageSection,
)
from carewire.config_sections import (
    ThrottleSection as ThrottleSection,
)
from carewire.config_sections import (
    TlsSection as TlsSection,
)
from carewire.config_sections import (
    XmppSection as XmppSection,
)
from carewire.config_upload import UploadSection, validate_upload
from carewire.errors import ConfigError
from carewire.push.section import PushSection

ENV_PREFIX = "CAREWIRE_"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, key: str) -> timedelta:
    """'7d', '13h', '30m', '45s' or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(
            f"{key}: expected a duration like '7d', '13h', '30m' or seconds, got {value!r}"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(
                f"{key}: expected a duration like '7d', '13h', '30m' or seconds, got {value!r}"
            )
        seconds = float(int(m.group(1)) * _UNITS[m.group(2)])
    if seconds < 0:
        raise ConfigError(f"{key}: a duration cannot be negative")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration of one Carewire instance."""

    data_dir: Path
    server: ServerSection = field(default_factory=ServerSection)
    https: HttpsSection = field(default_factory=HttpsSection)
    throttle: ThrottleSection = field(default_factory=ThrottleSection)
    storage: StorageSection = field(default_factory=StorageSection)
    tls: TlsSection = field(default_factory=TlsSection)
    xmpp: XmppSection = field(default_factory=XmppSection)
    rules: RulesSection = field(default_factory=RulesSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    directory: DirectorySection = field(default_factory=DirectorySection)
    directory_sync: DirectorySyncSection = field(default_factory=DirectorySyncSection)
    mail: MailSection = field(default_factory=MailSection)
    audit: AuditSection = field(default_factory=AuditSection)
    encryption: EncryptionSection = field(default_factory=EncryptionSection)
    upload: UploadSection = field(default_factory=UploadSection)
    pep: PepSection = field(default_factory=PepSection)
    push: PushSection = field(default_factory=PushSection)
    log: LogSection = field(default_factory=LogSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    contact: ContactSection = field(default_factory=ContactSection)
    components: ComponentsSection = field(default_factory=ComponentsSection)
    # [components.secrets] and [[components.component]]: who may attach (docs/components.md).
    component_secrets: tuple[ComponentSecret, ...] = ()
    s2s: S2SSection = field(default_factory=S2SSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)

    @property
    def database_url(self) -> str:
        """The storage URL with a relative SQLite path resolved against the data directory."""
        url = self.storage.url
        m = re.match(r"^(sqlite(?:\+aiosqlite)?):///(.*)$", url)
        if m and m.group(2) and not m.group(2).startswith("/"):
            return f"{m.group(1)}:///{(self.data_dir / m.group(2)).resolve()}"
        return url

    @property
    def mail_sender(self) -> str:
        """The From address of outgoing mail (``carewire@<domain>`` unless ``mail.sender``)."""
        return self.mail.sender or f"carewire@{self.server.domain}"

    @property
    def outbox_dir(self) -> Path:
        """Where mail is written when no SMTP server is configured."""
        return self.data_dir / "outbox"

    @property
    def cert_file(self) -> Path:
        """Absolute path of the certificate PEM."""
        return self.data_dir / self.tls.cert

    @property
    def key_file(self) -> Path:
        """Absolute path of the private key PEM."""
        return self.data_dir / self.tls.key

    @property
    def audit_key_file(self) -> Path:
        """The audit key's file (``audit.key_file``, relative to the data directory's parent)."""
        if not self.audit.key_file:
            return self.data_dir.parent / f"{self.data_dir.name}-keys" / "audit.key"
        return (self.data_dir.parent / self.audit.key_file).resolve()

    @property
    def audit_checkpoint_dir(self) -> Path:
        """Where checkpoints are appended (``audit.checkpoint_dir``, relative as the key file)."""
        if not self.audit.checkpoint_dir:
            return self.data_dir.parent / f"{self.data_dir.name}-audit"
        return (self.data_dir.parent / self.audit.checkpoint_dir).resolve()

    @property
    def kek_file(self) -> Path:
        """The key-encryption key's file (``encryption.key_file``, relative as the audit key)."""
        if not self.encryption.key_file:
            return self.data_dir.parent / f"{self.data_dir.name}-keys" / "kek"
        return (self.data_dir.parent / Path(self.encryption.key_file).expanduser()).resolve()


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSection,
    "https": HttpsSection,
    "throttle": ThrottleSection,
    "storage": StorageSection,
    "tls": TlsSection,
    "xmpp": XmppSection,
    "rules": RulesSection,
    "console": ConsoleSection,
    "directory": DirectorySection,
    "directory_sync": DirectorySyncSection,
    "mail": MailSection,
    "audit": AuditSection,
    "encryption": EncryptionSection,
    "upload": UploadSection,
    "pep": PepSection,
    "push": PushSection,
    "log": LogSection,
    "metrics": MetricsSection,
    "contact": ContactSection,
    "components": ComponentsSection,
    "s2s": S2SSection,
    "cluster": ClusterSection,
}


def _coerce(key: str, expected: Any, value: Any, from_env: bool) -> Any:
    if expected in (dict, "dict[str, str]"):
        return coerce_routes(key, value, from_env)
    if expected is bool or expected == "bool":
        if from_env and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if expected is int or expected == "int":
        if from_env and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if expected is float or expected == "float":  # [cluster]'s seconds
        return coerce_number(key, value, from_env)
    if expected in (tuple, "tuple[str, ...]"):
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _section(name: str, raw: dict[str, Any], env: dict[str, str]) -> Any:
    cls = _SECTIONS[name]
    known = {f.name: f.type for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _coerce(f"{name}.{key}", known[key], value, False)
    for key, typ in known.items():
        env_key = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_key in env:
            values[key] = _coerce(env_key, typ, env[env_key], True)
    return cls(**values)


def _validate(cfg: Config) -> None:
    s = cfg.server
    for key in ("c2s_port", "c2s_tls_port", "s2s_port", "https_port"):
        port = getattr(s, key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"server.{key}: expected a port 0–65535, got {port}")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", s.domain) or ".." in s.domain:
        raise ConfigError(f"server.domain: {s.domain!r} is not a valid lowercase DNS name")
    x = cfg.xmpp
    if not 1 <= x.login_delay_after <= x.lockout_after:
        raise ConfigError("xmpp.login_delay_after: must be between 1 and xmpp.lockout_after")
    if x.max_read_rate < 0:
        raise ConfigError("xmpp.max_read_rate: must be 0 (unlimited) or a positive byte rate")
    if x.max_read_burst < x.max_stanza_bytes:
        raise ConfigError("xmpp.max_read_burst: must be at least xmpp.max_stanza_bytes")
    if x.max_unauthenticated_per_address < 0:
        raise ConfigError(
            "xmpp.max_unauthenticated_per_address: must be 0 (no cap) or a positive number"
        )
    if x.register_limit < 1:
        raise ConfigError("xmpp.register_limit: must be at least 1")
    if parse_duration(x.account_check_interval, "xmpp.account_check_interval").total_seconds() < 1:
        raise ConfigError("xmpp.account_check_interval: must be at least 1s")
    for key in (
        "register_window",
        "offline_message_timeout",
        "ping_interval",
        "ping_timeout",
        "auth_timeout",
        "login_delay",
    ):
        parse_duration(getattr(x, key), f"xmpp.{key}")
    if x.max_stanza_bytes < 10_000:
        raise ConfigError("xmpp.max_stanza_bytes: must be at least 10000 (RFC 6120 §13.12)")
    if x.scram_iterations < 4096:
        raise ConfigError("xmpp.scram_iterations: must be at least 4096 (RFC 7677)")
    r = cfg.rules
    if not 1 <= r.max_depth <= 100:
        raise ConfigError(f"rules.max_depth: must be between 1 and 100, got {r.max_depth}")
    if parse_duration(r.action_timeout, "rules.action_timeout").total_seconds() <= 0:
        raise ConfigError("rules.action_timeout: must be more than 0s")
    try:
        zoneinfo.ZoneInfo(r.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"rules.time_zone: {r.time_zone!r} is not a known time zone (e.g. America/New_York)"
        ) from None
    _validate_https(cfg)
    _validate_throttle(cfg)
    _validate_console(cfg)
    _validate_directory(cfg)
    _validate_directory_sync(cfg)
    _validate_mail(cfg)
    _validate_audit(cfg)
    _validate_encryption(cfg)
    validate_upload(cfg.upload, parse_duration)
    validate_metrics(cfg.metrics)
    validate_cluster(cfg.cluster)
    validate_s2s(cfg.s2s)
    for key in ("connect_timeout", "idle_timeout"):
        parse_duration(getattr(cfg.s2s, key), f"s2s.{key}")
    check_contact(cfg.contact)
    validate_components(
        cfg.components,
        cfg.component_secrets,
        domain=s.domain,
        parse_duration=parse_duration,
    )
    if cfg.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"log.level: expected debug, info, warning or error, got {cfg.log.level!r}"
        )
    if cfg.log.format not in ("text", "json"):
        raise ConfigError(f"log.format: expected text or json, got {cfg.log.format!r}")
    if not cfg.storage.url.startswith(("sqlite", "postgres")):
        raise ConfigError(
            f"storage.url: expected a sqlite:/// or postgresql:// URL, got {cfg.storage.url!r}"
        )


def _validate_https(cfg: Config) -> None:
    h = cfg.https
    if h.websocket_url and not re.fullmatch(r"wss://[^\s/?#]+(/[^\s?#]*)?", h.websocket_url):
        raise ConfigError(
            f"https.websocket_url: expected a wss:// URL without query, got {h.websocket_url!r}"
        )
    for key in ("header_timeout", "body_timeout"):
        seconds = parse_duration(getattr(h, key), f"https.{key}").total_seconds()
        if not 1 <= seconds <= 600:
            raise ConfigError(f"https.{key}: must be between 1s and 10m, got {getattr(h, key)!r}")
    if not 1024 <= h.max_body_bytes <= h.max_upload_bytes:
        raise ConfigError(
            "https.max_body_bytes: must be at least 1024 and at most max_upload_bytes"
        )
    if h.max_upload_bytes > 1 << 30:
        raise ConfigError("https.max_upload_bytes: must be at most 1 GiB")


def _validate_throttle(cfg: Config) -> None:
    t = cfg.throttle
    if not 1 <= t.max_failures <= 10_000:
        raise ConfigError(
            f"throttle.max_failures: must be between 1 and 10000, got {t.max_failures}"
        )
    window = parse_duration(t.window, "throttle.window").total_seconds()
    if not 1 <= window <= 86_400:
        raise ConfigError(f"throttle.window: must be between 1s and 24h, got {t.window!r}")


def _validate_console(cfg: Config) -> None:
    c = cfg.console
    timeout = parse_duration(c.session_timeout, "console.session_timeout").total_seconds()
    if not 1 <= timeout <= 86_400:
        raise ConfigError(
            f"console.session_timeout: must be between 1s and 24h, got {c.session_timeout!r}"
        )
    ttl = parse_duration(c.reset_link_ttl, "console.reset_link_ttl").total_seconds()
    if not 60 <= ttl <= 7 * 86_400:
        raise ConfigError(
            f"console.reset_link_ttl: must be between 1m and 7d, got {c.reset_link_ttl!r}"
        )


def _validate_directory_sync(cfg: Config) -> None:
    d = cfg.directory_sync
    limits = {"status_interval": 1, "interval": 60, "full_interval": 60, "timeout": 1}
    for key, least in limits.items():
        seconds = parse_duration(getattr(d, key), f"directory_sync.{key}").total_seconds()
        if seconds < least:
            raise ConfigError(f"directory_sync.{key}: at least {least} s, got {getattr(d, key)!r}")
    if not 1 <= d.keep_runs <= 100_000:
        raise ConfigError(f"directory_sync.keep_runs: 1 to 100000, got {d.keep_runs!r}")


def _validate_directory(cfg: Config) -> None:
    d = cfg.directory
    for key, low, high, text in (
        ("invitation_link_ttl", 3600, 90 * 86_400, "1h and 90d"),
        ("affiliation_link_ttl", 3600, 90 * 86_400, "1h and 90d"),
        ("pin_reset_link_ttl", 300, 7 * 86_400, "5m and 7d"),
    ):
        value = getattr(d, key)
        ttl = parse_duration(value, f"directory.{key}").total_seconds()
        if not low <= ttl <= high:
            raise ConfigError(f"directory.{key}: must be between {text}, got {value!r}")


def _validate_audit(cfg: Config) -> None:
    for key, path in (
        ("audit.key_file", cfg.audit_key_file),
        ("audit.checkpoint_dir", cfg.audit_checkpoint_dir),
    ):
        if path.resolve().is_relative_to(cfg.data_dir):
            # Whoever copies or can write the data directory must not find the key beside it.
            raise ConfigError(f"{key}: {path} must be outside the data directory {cfg.data_dir}")
    interval = parse_duration(cfg.audit.checkpoint_interval, "audit.checkpoint_interval")
    if not 1 <= interval.total_seconds() <= 86_400:
        raise ConfigError(
            f"audit.checkpoint_interval: must be between 1s and 24h, "
            f"got {cfg.audit.checkpoint_interval!r}"
        )


def _validate_encryption(cfg: Config) -> None:
    e = cfg.encryption
    interval = parse_duration(e.refresh_interval, "encryption.refresh_interval").total_seconds()
    if not 1 <= interval <= 3600:
        raise ConfigError(
            f"encryption.refresh_interval: must be between 1s and 1h, got {e.refresh_interval!r}"
        )
    if cfg.kek_file.is_relative_to(cfg.data_dir):
        # A copy or backup of the data directory must not carry the key that opens it.
        raise ConfigError(
            f"encryption.key_file: {cfg.kek_file} is inside the data directory; keep the key"
            " outside it (the default is <data dir>-keys/kek)"
        )


_ADDRESS = re.compile(r"^[^@\s<>\"]+@[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", re.IGNORECASE)
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")


def _validate_mail(cfg: Config) -> None:
    m = cfg.mail
    if m.smtp_host and not _HOST.match(m.smtp_host):
        raise ConfigError(
            f"mail.smtp_host: expected a host name or address (or empty for the outbox), "
            f"got {m.smtp_host!r}"
        )
    if not 1 <= m.smtp_port <= 65535:
        raise ConfigError(f"mail.smtp_port: expected a port 1–65535, got {m.smtp_port}")
    if m.smtp_password and not m.smtp_user:
        raise ConfigError("mail.smtp_password: set mail.smtp_user too (or neither)")
    if m.smtp_user and not m.smtp_host:
        raise ConfigError("mail.smtp_user: set mail.smtp_host too (an outbox needs no login)")
    if m.smtp_user and not m.smtp_starttls:
        # The password would cross the network in clear text.
        raise ConfigError("mail.smtp_user: a login needs mail.smtp_starttls = true")
    if m.sender and not _ADDRESS.match(m.sender):
        raise ConfigError(f"mail.sender: expected an address like carewire@host, got {m.sender!r}")


def load(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    config_file: Path | None = None,
) -> Config:
    """Read and validate the configuration of ``data_dir``.

    Args:
        data_dir: The data directory.
        env: The environment (``CAREWIRE_<SECTION>_<KEY>`` overrides); the process's if None.
        overrides: Values by section, over the file's and the environment's.
        config_file: The configuration file, when it is not ``data_dir/carewire.toml``.
    """
    env = dict(os.environ) if env is None else env
    path = config_file or data_dir / CONFIG_FILE
    raw: dict[str, Any] = read_table(path)
    # The top-level data_dir led the caller to ``data_dir`` (config_location.locate).
    raw.pop(DATA_DIR_KEY, None)
    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(raw[name], dict):
            raise ConfigError(f"{name}: expected a table [{name}]")
    raw["components"], entries = split_secrets(raw.get("components", {}))
    sections = {name: _section(name, raw.get(name, {}), env) for name in _SECTIONS}
    secrets = read_secrets(entries, env)
    cfg = Config(data_dir=data_dir.resolve(), component_secrets=secrets, **sections)
    for name, values in (overrides or {}).items():
        current = getattr(cfg, name)
        cfg = replace(cfg, **{name: replace(current, **values)})
    _validate(cfg)
    return cfg


def render_default(domain: str, *, data_dir: Path | None = None) -> str:
    """The ``carewire.toml`` that ``carewire init`` writes (naming ``data_dir`` when given)."""
    top = (
        ""
        if data_dir is None
        else f"\n{DATA_DIR_KEY} = {json.dumps(str(data_dir))}   # the data directory\n"
    )
    return f"""# Carewire configuration. Every key is documented in docs/configuration.md.
# Environment variables override keys: CAREWIRE_SERVER_C2S_PORT=5222, …
{top}
[server]
domain = "{domain}"          # the chat domain: users are login@{domain}
bind = "127.0.0.1"           # "0.0.0.0" to accept clients from other machines
c2s_port = 5222              # XMPP clients, STARTTLS required
c2s_tls_port = 5223          # XMPP clients, direct TLS (XEP-0368)
s2s_port = 5269              # federation with other XMPP servers ([s2s] enabled)
https_port = 8443            # HTTPS: /xmpp-websocket, /healthz

[https]
header_timeout = "10s"       # a request head must arrive within this, or the connection closes
body_timeout = "30s"         # the same for the request body
max_body_bytes = 1048576     # larger JSON and form bodies are refused (413)
max_upload_bytes = 16777216  # larger file uploads are refused (413)

[storage]
url = "sqlite:///carewire.db"   # or postgresql://user@host/db

[tls]
cert = "certs/xmpp.pem"
key = "certs/xmpp.key"

[xmpp]
offline_message_timeout = "7d"
register_enabled = false     # XEP-0077 in-band registration
version_visible = false      # XEP-0092 answers only when true
scram_iterations = 10000     # PBKDF2 rounds of new and changed passwords
max_unauthenticated_per_address = 32  # connections not yet signed in, per address

[throttle]
max_failures = 20            # failed sign-ins from one address (XMPP, API, console) …
window = "10m"               # … within this period: its attempts are refused until it passes

[rules]
max_depth = 8                # rule-caused writes in a chain before it is stopped (cycles)
time_zone = "UTC"            # zone for times in #{{...}} templates, e.g. "America/New_York"

[console]
session_timeout = "20m"      # web console: signed out after this long without activity
reset_link_ttl = "30m"       # how long a mailed password-reset link works

[directory]
invitation_link_ttl = "14d"  # a user invitation's registration link works this long
affiliation_link_ttl = "7d"  # an affiliation invitation's link works this long
pin_reset_link_ttl = "24h"   # a PIN-reset link works this long (once)

[directory_sync]
status_interval = "10s"      # LDAP integrations: how often Connected / Not Connected is checked
interval = "90m"             # how often each enabled integration syncs
full_interval = "24h"        # a scheduled sync is full (sees who left) when the last is older
timeout = "10s"              # a connection, bind or search page may take this long
keep_runs = 200              # import results kept per organisation

[mail]
smtp_host = ""               # empty: mail is written to DATA/outbox/ instead of sent
smtp_port = 587
smtp_starttls = true
smtp_user = ""
smtp_password = ""
sender = "carewire@{domain}"

[audit]
key_file = ""                # empty: the data directory's name + "-keys/audit.key", beside it
checkpoint_dir = ""          # empty: the data directory's name + "-audit/", beside it
checkpoint_interval = "15m"  # the server signs the audit trail's head this often
checkpoint_log = true        # and writes each checkpoint to the log too

[encryption]
enabled = true               # message bodies and stored stanzas encrypted at rest
key_file = ""                # empty: the data directory's name + "-keys/kek", beside it
refresh_interval = "30s"     # a running server picks up `carewire keys rotate` this often

[pep]
e2e_encryption = "refuse"    # OMEMO end-to-end encryption: "refuse" (default) or "allow"
e2e_reason = ""              # what refused clients are told; empty: the built-in reason

[s2s]
enabled = false              # federation with other hospitals' XMPP servers (docs/federation.md)
tls_port = 5270              # direct TLS for peers (XEP-0368); server.s2s_port is STARTTLS
dialback = true              # Server Dialback for peers whose certificate does not validate
ca_file = ""                 # the hospital CA (PEM) that signs partners' certificates
max_stanza_size = 524288     # bytes

[s2s.routes]                 # partners without public DNS: "their.domain" = "host:port"

[log]
level = "info"
format = "text"              # "json": one JSON object per line (time, level, logger, message)

[metrics]
enabled = true               # /metrics on the HTTPS port, bearer token in keys/metrics.token
listen = ""                  # "127.0.0.1:9464": also plain HTTP on loopback, no token (off)

[cluster]
redis_url = ""               # several nodes, one domain (docs/cluster.md); empty: one node
"""
