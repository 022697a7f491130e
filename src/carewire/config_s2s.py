"""The ``[s2s]`` section: federation with other XMPP domains (docs/federation.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from carewire.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class S2SSection:
    """[s2s]: server-to-server streams (the port is ``server.s2s_port``)."""

    enabled: bool = False  # CAREWIRE_S2S_ENABLED=true turns federation on
    tls_port: int = 5270  # direct TLS (XEP-0368 _xmpps-server)
    dialback: bool = True  # Server Dialback (XEP-0220) for peers without a usable certificate
    ca_file: str = ""  # extra trust anchors (the hospital CA), PEM; relative to the data directory
    dns_server: str = ""  # "127.0.0.1:5353": resolve SRV records there instead of the system's
    queue_limit: int = 1000  # stanzas waiting per domain while a stream is made
    connect_timeout: str = "10s"
    idle_timeout: str = "10m"
    max_stanza_size: int = 524_288  # bytes, as Prosody's default
    rate: int = 3000  # stanzas per second from one domain (0: unlimited) …
    burst: int = 10000  # … after a burst of this many
    # The static policy (until the trusted-domain directory supplies it, docs/federation.md):
    allow: tuple[str, ...] = ()  # partner domains; empty: any domain
    certificates_only: bool = False  # refuse Server Dialback, certificates (or pins) only
    pins: dict[str, str] = field(default_factory=dict)  # "domain" = "sha256 hex[ sha256 hex…]"
    routes: dict[str, str] = field(default_factory=dict)  # "domain" = "host:port" (STARTTLS)
    tls_routes: dict[str, str] = field(default_factory=dict)  # the same, direct TLS


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")


def coerce_routes(key: str, value: Any, from_env: bool) -> dict[str, str]:
    """A routes table: TOML ``{domain = "host:port"}`` or env ``domain=host:port,…``.

    ``pins`` is the one table of fingerprints: ``{domain = "hex hex"}`` or env
    ``domain=hex hex,…`` (SHA-256 of the certificate, colons allowed).
    """
    if key.lower().endswith("pins"):
        return _coerce_pins(key, value, from_env)
    if from_env and isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"{key}: expected domain=host:port,…, got {value!r}")
        value = {d.strip(): v.strip() for d, v in pairs}
    if not isinstance(value, dict):
        raise ConfigError(f'{key}: expected a table of domain = "host:port"')
    for domain, target in value.items():
        if not isinstance(target, str) or not _HOSTPORT.match(target):
            raise ConfigError(f'{key}.{domain}: expected "host:port", got {target!r}')
    return {str(d).lower(): str(v) for d, v in value.items()}


def _coerce_pins(key: str, value: Any, from_env: bool) -> dict[str, str]:
    if from_env and isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"{key}: expected domain=fingerprint,…, got {value!r}")
        value = {d.strip(): v.strip() for d, v in pairs}
    if not isinstance(value, dict):
        raise ConfigError(f'{key}: expected a table of domain = "fingerprint"')
    out: dict[str, str] = {}
    for domain, text in value.items():
        prints = [f.replace(":", "").lower() for f in str(text).split()]
        if not prints or not all(_SHA256.match(f) for f in prints):
            raise ConfigError(f"{key}.{domain}: expected SHA-256 fingerprints (hex), got {text!r}")
        out[str(domain).lower()] = " ".join(prints)
    return out


def pins_of(section: S2SSection) -> dict[str, frozenset[str]]:
    """The pinned fingerprints per domain."""
    return {d: frozenset(v.split()) for d, v in section.pins.items()}


def validate_s2s(section: S2SSection) -> None:
    """Range checks of ``[s2s]``."""
    if not 0 <= section.tls_port <= 65535:
        raise ConfigError(f"s2s.tls_port: expected a port 0–65535, got {section.tls_port}")
    for key in ("queue_limit", "max_stanza_size"):
        if getattr(section, key) < 1:
            raise ConfigError(f"s2s.{key}: must be at least 1")
    if section.rate < 0 or section.burst < 1:
        raise ConfigError("s2s.rate must be ≥ 0 and s2s.burst ≥ 1")
    if section.dns_server and not _HOSTPORT.match(section.dns_server):
        raise ConfigError(f"s2s.dns_server: expected host:port, got {section.dns_server!r}")
