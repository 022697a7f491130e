"""The ``[metrics]`` section of the configuration: Prometheus ``/metrics`` (docs/monitoring.md).

Kept apart from :mod:`carewire.config`, which loads it like every other
section (``CAREWIRE_METRICS_<KEY>`` variables included).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from carewire.errors import ConfigError

#: Where the bearer token is kept when ``metrics.token`` is empty (made by ``carewire init``).
TOKEN_FILE = "keys/metrics.token"
#: Shortest token accepted in ``metrics.token`` (characters).
MIN_TOKEN = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSection:
    """[metrics]: Prometheus metrics, on the HTTPS port behind a token or a loopback port."""

    enabled: bool = True  # serve /metrics on the HTTPS port (bearer token required)
    token: str = ""  # empty: the token in <data dir>/keys/metrics.token (made by carewire init)
    listen: str = ""  # e.g. "127.0.0.1:9464": also plain HTTP there, no token; empty: off
    allow_remote: bool = False  # let metrics.listen use a non-loopback address
    alert_latency_objective_ms: int = 1000  # p99 record write → first receipt (the dashboard)


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:9464``) → (host, port).

    Raises:
        ConfigError: Not an address and port.
    """
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"metrics.listen: expected host:port like 127.0.0.1:9464, got {value!r}")
    return host, int(port)


def validate_metrics(m: MetricsSection) -> None:
    """Check ``[metrics]``.

    Raises:
        ConfigError: A value out of range; the message names the key.
    """
    if m.token and len(m.token) < MIN_TOKEN:
        raise ConfigError(f"metrics.token: use at least {MIN_TOKEN} characters")
    if not 1 <= m.alert_latency_objective_ms <= 3_600_000:
        raise ConfigError(
            "metrics.alert_latency_objective_ms: must be between 1 and 3600000, "
            f"got {m.alert_latency_objective_ms}"
        )
    if not m.listen:
        return
    host, _ = split_listen(m.listen)
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ConfigError(
            f"metrics.listen: expected an IP address, not a name, got {host!r}"
        ) from None
    if not is_loopback and not m.allow_remote:
        # The plain port has no token and no TLS: anyone who reaches it reads the figures.
        raise ConfigError(
            f"metrics.listen: {host} is not a loopback address; the metrics port has no "
            "token and no TLS. Use 127.0.0.1 (or ::1), or set metrics.allow_remote = true "
            "behind a firewall"
        )
