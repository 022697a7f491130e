"""The plain sections of the configuration file, as frozen dataclasses.

Kept apart from :mod:`carewire.config`, which reads, checks and re-exports
them; ``docs/configuration.md`` explains every key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSection:
    """[server]: the chat domain and where to listen."""

    domain: str = "carewire.localhost"
    bind: str = "127.0.0.1"
    c2s_port: int = 5222
    c2s_tls_port: int = 5223
    s2s_port: int = 5269
    https_port: int = 8443
    websocket: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpsSection:
    """[https]: limits of the HTTPS port (console, REST API, WebSocket)."""

    header_timeout: str = "10s"  # a request head must arrive within this …
    body_timeout: str = "30s"  # … and its body within this, or the connection is closed
    max_body_bytes: int = 1_048_576  # JSON and form bodies; larger ones get 413
    max_upload_bytes: int = 16_777_216  # multipart uploads (CSV and certificate files)
    # What /.well-known/host-meta (XEP-0156) tells web clients; empty:
    # wss://<domain>:<https_port>/xmpp-websocket. Set it behind a reverse proxy.
    websocket_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleSection:
    """[throttle]: failed authentications per source address (XMPP, REST API, console)."""

    max_failures: int = 20  # after this many failures from one address …
    window: str = "10m"  # … within this period, its attempts are refused until it passes


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSection:
    """[storage]: the database URL (SQLite file in the data directory by default)."""

    url: str = "sqlite:///carewire.db"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSection:
    """[tls]: certificate and key (PEM), relative to the data directory."""

    cert: str = "certs/xmpp.pem"
    key: str = "certs/xmpp.key"


@dataclass(frozen=True, slots=True, kw_only=True)
class XmppSection:
    """[xmpp]: protocol behaviour."""

    offline_message_timeout: str = "7d"
    offline_max_per_user: int = 1000
    register_enabled: bool = False
    register_limit: int = 5  # in-band registrations per address …
    register_window: str = "1h"  # … per this period
    version_visible: bool = False
    ping_interval: str = "5m"
    ping_timeout: str = "60s"
    auth_timeout: str = "60s"
    account_check_interval: str = "30s"
    max_stanza_bytes: int = 262_144
    max_send_buffer: int = 1_048_576
    max_read_rate: int = 262_144  # bytes/s per connection, 0 = unlimited
    max_read_burst: int = 1_048_576
    max_unauthenticated_per_address: int = 32  # connections not yet signed in, per address
    scram_iterations: int = 10_000  # PBKDF2 rounds of new and changed XMPP passwords
    login_delay_after: int = 5  # security policy: after the 5th consecutive failure …
    login_delay: str = "3m"  # … a three-minute wait between attempts
    lockout_after: int = 10  # security policy: locked after 10 failures until unlocked
    smacks_resume_timeout: str = "5m"  # XEP-0198: how long a dropped session may be resumed
    smacks_max_unacked: int = 1000
    csi_max_held: int = 500
    expiry_check_interval: str = "60s"  # longest wait before message expiry re-reads its queue
    sasl2_enabled: bool = True  # XEP-0388 SASL2 + XEP-0386 Bind2 (docs/sasl2.md)
    fast_token_lifetime: str = "14d"  # XEP-0484 FAST tokens; "0s" turns FAST off
    fast_rotate_after: str = "1d"  # a token used this long after it was issued is replaced
    fast_require_pin: bool = True  # a FAST login of a user with a directory PIN must give it
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesSection:
    """[rules]: the rules engine."""

    max_depth: int = 8  # rule actions in a chain before a firing is refused (cycles)
    action_timeout: str = "30s"  # longest an action may take before its delivery is Error
    time_zone: str = "UTC"  # the zone #{...} templates render times in (IANA name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSection:
    """[console]: the web admin console on the HTTPS port."""

    session_timeout: str = "20m"  # the policy: signed out after 20 minutes without activity
    reset_link_ttl: str = "30m"  # how long a mailed password-reset link works


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySection:
    """[directory]: the organisation directory's mailed links."""

    invitation_link_ttl: str = "14d"  # how long a user invitation's registration link works
    affiliation_link_ttl: str = "7d"  # how long an affiliation invitation's link works
    pin_reset_link_ttl: str = "24h"  # how long a PIN-reset link works


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySyncSection:
    """[directory_sync]: directory sync from LDAP (docs/ldap.md)."""

    status_interval: str = "10s"  # how often each integration's Connected status is checked
    interval: str = "90m"  # how often each enabled integration syncs
    full_interval: str = "24h"  # a scheduled run is full when the last full one is older
    timeout: str = "10s"  # a connection, bind or search page may take this long
    keep_runs: int = 200  # import results kept per organisation


@dataclass(frozen=True, slots=True, kw_only=True)
class MailSection:
    """[mail]: outgoing mail (password resets); empty ``smtp_host`` writes to ``DATA/outbox/``."""

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = ""  # empty: carewire@<server.domain>


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSection:
    """[audit]: the audit key and the signed checkpoints, both kept outside the data directory."""

    key_file: str = ""  # empty: <data dir>-keys/audit.key beside the data directory
    checkpoint_dir: str = ""  # empty: <data dir>-audit/ beside the data directory
    checkpoint_interval: str = "15m"  # the server signs the chain's head this often
    checkpoint_log: bool = True  # also write each checkpoint to the log


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptionSection:
    """[encryption]: message bodies and stored stanzas encrypted at rest (docs/encryption.md)."""

    enabled: bool = True  # false only to measure the cost: new values are then written in clear
    key_file: str = ""  # the key-encryption key; empty: <data dir>-keys/kek beside the data dir
    refresh_interval: str = "30s"  # how often a running server loads keys a rotation made


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSection:
    """[log]: logging."""

    level: str = "info"
    format: str = "text"  # "json": one JSON object per line (docs/monitoring.md)
