"""The ``[components]`` section: external components (XEP-0114) and their shared secrets.

Kept apart from :mod:`carewire.config` (near its size bound), which reads the
plain keys of :class:`ComponentsSection` like any section's; this module reads
the two shapes of the per-domain secrets, which no other section has::

    [components.secrets]                  # short form: domain = secret
    "gateway.hospital.example" = "…"

    [[components.component]]              # long form: the secret from the environment
    domain = "pager.hospital.example"
    secret_env = "PAGER_COMPONENT_SECRET"

Secrets never appear in a ``repr`` (so never in a log line or a traceback's
locals rendered by ``repr``); docs/components.md explains every key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from carewire.errors import ConfigError

#: The shortest secret accepted: the handshake is a plain SHA-1 over it (XEP-0114 §3).
MIN_SECRET_LENGTH = 16
#: Sub-domains the server's own features serve: never a component's.
RESERVED_PREFIXES = ("chat.", "patients.", "groups.", "upload.", "push.")
_DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentsSection:
    """[components]: the listener external components attach to (docs/components.md)."""

    bind: str = "127.0.0.1"  # loopback: the handshake is not encrypted
    port: int = 5347
    handshake_timeout: str = "30s"  # a component must complete its handshake within this
    max_stanza_bytes: int = 262_144
    max_send_buffer: int = 1_048_576  # a component that stops reading is cut off past this


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentSecret:
    """One component domain that may attach and the secret it proves in its handshake."""

    domain: str
    secret: str = field(repr=False)  # empty: secret_env is not set in this process
    secret_env: str = ""  # where the secret came from, when from the environment

    def require(self) -> str:
        """The secret; only the server needs it (a CLI process may lack the variable).

        Raises:
            ConfigError: the environment variable is not set.
        """
        if not self.secret:
            raise ConfigError(
                f"components: the secret of {self.domain} is read from {self.secret_env}, "
                "which is not set"
            )
        return self.secret


def split_secrets(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """``raw`` [components] without its secrets, and the secrets' raw entries (key, value).

    Raises:
        ConfigError: ``secrets`` is not a table or ``component`` not a list of tables.
    """
    plain = {k: v for k, v in raw.items() if k not in ("secrets", "component")}
    entries: list[tuple[str, Any]] = []
    table = raw.get("secrets", {})
    if not isinstance(table, dict):
        raise ConfigError('components.secrets: expected a table of "domain" = "secret"')
    entries += [(f"components.secrets.{k}", {"domain": k, "secret": v}) for k, v in table.items()]
    items = raw.get("component", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError("components.component: expected [[components.component]] tables")
    entries += [(f"components.component[{n}]", item) for n, item in enumerate(items)]
    return plain, entries


def read_secrets(
    entries: list[tuple[str, Any]], env: Mapping[str, str]
) -> tuple[ComponentSecret, ...]:
    """The secrets of :func:`split_secrets`' entries, read from the file or the environment.

    Raises:
        ConfigError: naming the entry (never the secret) when one is malformed.
    """
    out: list[ComponentSecret] = []
    for where, item in entries:
        unknown = set(item) - {"domain", "secret", "secret_env"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        domain = item.get("domain")
        if not isinstance(domain, str):
            raise ConfigError(f"{where}.domain: expected the component's domain as a string")
        secret, name = item.get("secret"), item.get("secret_env")
        if (secret is None) == (name is None):
            raise ConfigError(f"{where}: give either secret or secret_env")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.secret_env: expected an environment variable's name")
            secret = env.get(name, "")
        if not isinstance(secret, str):
            raise ConfigError(f"{where}.secret: expected a string")
        if (secret or name is None) and len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{where}: the secret must be at least {MIN_SECRET_LENGTH} characters"
            )
        out.append(
            ComponentSecret(
                domain=domain.strip().lower().rstrip("."), secret=secret, secret_env=name or ""
            )
        )
    return tuple(out)


def validate_components(
    section: ComponentsSection,
    secrets: tuple[ComponentSecret, ...],
    *,
    domain: str,
    parse_duration: Callable[[Any, str], timedelta],
) -> None:
    """Check the listener's keys and that each component domain is a name of its own.

    Raises:
        ConfigError: naming the key.
    """
    if not 0 <= section.port <= 65535:
        raise ConfigError(f"components.port: expected a port 0–65535, got {section.port}")
    timeout = parse_duration(section.handshake_timeout, "components.handshake_timeout")
    if not 1 <= timeout.total_seconds() <= 600:
        raise ConfigError("components.handshake_timeout: must be between 1s and 10m")
    if section.max_stanza_bytes < 10_000:
        raise ConfigError("components.max_stanza_bytes: must be at least 10000 (RFC 6120 §13.12)")
    if section.max_send_buffer < section.max_stanza_bytes:
        raise ConfigError("components.max_send_buffer: must be at least max_stanza_bytes")
    reserved = {domain, *(p + domain for p in RESERVED_PREFIXES)}
    seen: set[str] = set()
    for entry in secrets:
        name = entry.domain
        if not _DNS_NAME.fullmatch(name) or len(name) > 253:
            raise ConfigError(f"components: {name!r} is not a valid lowercase DNS name")
        if name in reserved:
            raise ConfigError(f"components: {name} is served by Carewire itself")
        if name in seen:
            raise ConfigError(f"components: {name} is configured twice")
        seen.add(name)
